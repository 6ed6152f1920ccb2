"""The merge expression: JSON tree -> normalized IR, with the linear parts folded. No torch here.

Tree (from the checker): a number, {"model": i}, {"op": "add"|"sub"|"mul"|"div"|"neg", "args": [...]},
or {"op": "call", "name": NAME, "args": {field: value}} for a tensorwise operator. Operators are looked
up with the `operators` function given to `parse` (ctx.operator: the registry the program was checked
against), and each `KernelCall` keeps its operator, so that compiling it needs no lookup.

IR: every model-valued expression is a `Lin`, a linear combination `sum(c_k * atom_k) + const` whose
atoms are operands (`OperandRef`), tensorwise calls (`KernelCall`, their model arguments are `Lin`s again) or the
rare non-linear products (`Prod`, `Quot`). Folding is exact algebra on the coefficients, so
`base + 0.5*(m1 - base) + 0.3*(m2 - base)` becomes `0.2*base + 0.5*m1 + 0.3*m2`: each operand
appears once, and the evaluator reads each input tensor once.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Union

from pydantic import ValidationError

from expc.runtime.api import OpError

if TYPE_CHECKING:
    from expc.runtime.registry import Operator


@dataclass(frozen=True)
class OperandRef:
    index: int  # operand index into the algebra node's `models`


@dataclass(frozen=True)
class KernelCall:
    op: Operator  # a tensorwise operator: it declares the kernel the call compiles to
    # (field, value) in params-model order; model fields hold a Lin or a tuple of Lins.
    args: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        return self.op.name

    def arg(self, name: str) -> Any:
        return dict(self.args)[name]


@dataclass(frozen=True)
class Prod:
    a: "Lin"
    b: "Lin"


@dataclass(frozen=True)
class Quot:
    a: "Lin"
    b: "Lin"


Atom = Union[OperandRef, KernelCall, Prod, Quot]


@dataclass(frozen=True)
class Lin:
    terms: tuple[tuple[Atom, float], ...]
    const: float = 0.0

    @staticmethod
    def of(atom: Atom) -> "Lin":
        return Lin(((atom, 1.0),))

    def scale(self, c: float) -> "Lin":
        return _make({a: k * c for a, k in self.terms}, self.const * c)

    def __add__(self, other: "Lin") -> "Lin":
        acc = dict(self.terms)
        for a, k in other.terms:
            acc[a] = acc.get(a, 0.0) + k
        return _make(acc, self.const + other.const)

    @property
    def single(self) -> Atom | None:
        """The atom when this is exactly `1 * atom`."""
        if len(self.terms) == 1 and self.terms[0][1] == 1.0 and self.const == 0.0:
            return self.terms[0][0]
        return None

    def leaves(self) -> set[int]:
        out: set[int] = set()
        for a, _ in self.terms:
            out |= atom_leaves(a)
        return out


def _make(acc: dict, const: float) -> Lin:
    # Coefficients that cancel up to rounding (1 - 0.7 - 0.3 = 5.6e-17) are dropped, so that the
    # operand is not read at all.
    scale = sum(abs(k) for k in acc.values()) or 1.0
    return Lin(tuple((a, k) for a, k in acc.items() if abs(k) > 1e-12 * scale), const)


def atom_leaves(a: Atom) -> set[int]:
    if isinstance(a, OperandRef):
        return {a.index}
    if isinstance(a, (Prod, Quot)):
        return a.a.leaves() | a.b.leaves()
    out: set[int] = set()
    for _, v in a.args:
        for lin in _lins(v):
            out |= lin.leaves()
    return out


def _lins(v: Any) -> list[Lin]:
    if isinstance(v, Lin):
        return [v]
    if isinstance(v, tuple) and v and all(isinstance(x, Lin) for x in v):
        return list(v)
    return []


class _Record(tuple):
    """A frozen record value: sorted (key, value) pairs, a dict again for the kernel."""


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return _Record(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def thaw(v: Any) -> Any:
    """A frozen argument value as the params model held it (lists and dicts)."""
    if isinstance(v, _Record):
        return {k: thaw(x) for k, x in v}
    if isinstance(v, tuple):
        return [thaw(x) for x in v]
    return v


# ---------------------------------------------------------------------------------------------- parse


Operators = Callable[[str], "Operator | None"]  # name -> operator, e.g. ctx.operator


def parse(tree: Any, n_models: int, operators: Operators) -> Lin:
    """Normalize the tree, its calls looked up with `operators`; a problem is an OpError on field "expr"."""
    v = _parse(tree, n_models, operators)
    if not isinstance(v, Lin):
        raise OpError("the merge expression has no model in it (it is the number %g)" % v, field="expr")
    return v


def _fail(msg: str) -> OpError:
    return OpError(msg, field="expr")


def _parse(node: Any, n: int, ops: Operators) -> Lin | float:
    if isinstance(node, bool):
        raise _fail(f"a boolean ({node}) is not a model or a number")
    if isinstance(node, (int, float)):
        return float(node)
    if not isinstance(node, dict):
        raise _fail(f"malformed merge expression node: {node!r}")
    if "model" in node:
        i = node["model"]
        if not isinstance(i, int) or not 0 <= i < n:
            raise _fail(f"operand index {i!r} out of range (there are {n} models)")
        return Lin.of(OperandRef(i))
    op = node.get("op")
    if op == "call":
        return _parse_call(node, n, ops)
    args = node.get("args")
    if not isinstance(args, list) or not args:
        raise _fail(f"operator {op!r} needs a list of arguments")
    vals = [_parse(a, n, ops) for a in args]
    if op == "add":
        return _sum(vals)
    if op == "neg" and len(vals) == 1:
        return _scale(vals[0], -1.0)
    if op == "sub" and len(vals) == 2:
        return _sum([vals[0], _scale(vals[1], -1.0)])
    if op == "mul" and len(vals) == 2:
        a, b = vals
        if isinstance(a, float):
            return _scale(b, a)
        if isinstance(b, float):
            return _scale(a, b)
        return Lin.of(Prod(a, b))
    if op == "div" and len(vals) == 2:
        a, b = vals
        if isinstance(b, float):
            if b == 0.0:
                raise _fail("division by zero in the merge expression")
            return _scale(a, 1.0 / b) if isinstance(a, Lin) else a / b
        return Lin.of(Quot(a if isinstance(a, Lin) else Lin((), a), b))
    raise _fail(f"unknown merge operator {op!r} with {len(vals)} argument(s)")


def _num(v: Lin) -> Lin | float:
    # Terms that cancel completely (base - base) leave a number, e.g. for a division by it.
    return v if v.terms else v.const


def _scale(v: Lin | float, c: float) -> Lin | float:
    return _num(v.scale(c)) if isinstance(v, Lin) else v * c


def _sum(vals: list[Lin | float]) -> Lin | float:
    const = sum(v for v in vals if isinstance(v, float))
    lins = [v for v in vals if isinstance(v, Lin)]
    if not lins:
        return const
    acc = Lin((), const)
    for v in lins:
        acc = acc + v
    return _num(acc)


def _parse_call(node: dict, n: int, ops: Operators) -> Lin:
    name = node.get("name")
    op = ops(name) if isinstance(name, str) else None
    if op is None or not op.tensorwise:
        raise _fail(f"{name!r} is not a tensorwise merge operator")
    args = node.get("args")
    if not isinstance(args, dict):
        raise _fail(f"{name}(): arguments must be a record of fields")
    try:
        p = op.params.model_validate(args)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise _fail(f"{name}(): {where + ': ' if where else ''}{err['msg']}") from None
    out = []
    for f in op.fields:
        v = getattr(p, f.name)
        if f.input_types is not None:
            if f.is_list:
                if not isinstance(v, list) or not v:
                    raise _fail(f"{name}(): {f.name} must be a non-empty list of models")
                v = tuple(_model_arg(x, n, ops, name, f.name) for x in v)
            else:
                v = _model_arg(v, n, ops, name, f.name)
        else:
            v = _freeze(v)
        out.append((f.name, v))
    return Lin.of(KernelCall(op, tuple(out)))


def _model_arg(tree: Any, n: int, ops: Operators, op: str, field: str) -> Lin:
    v = _parse(tree, n, ops)
    if not isinstance(v, Lin):
        raise _fail(f"{op}(): {field} must be a model, got the number {v:g}")
    return v


# ---------------------------------------------------------------------------------- specialization


def output_cast(lin: Lin) -> tuple[Lin, str | None]:
    """Strip a top-level cast: `cast(e, "bfloat16")` means "write e in bfloat16"."""
    a = lin.single
    if isinstance(a, KernelCall) and a.name == "cast":
        inner, dtype = a.arg("model"), a.arg("dtype")
        inner2, outer = output_cast(inner)
        return inner2, outer or dtype
    return lin, None


def specialize(lin: Lin, tensor: str, hits: dict[str, int] | None = None) -> Lin:
    """Resolve every where(pattern, a, b) for one tensor name and refold; `hits` counts matches."""
    acc = Lin((), lin.const)
    for a, k in lin.terms:
        acc = acc + _spec_atom(a, tensor, hits).scale(k)
    return acc


def _spec_atom(a: Atom, tensor: str, hits) -> Lin:
    if isinstance(a, OperandRef):
        return Lin.of(a)
    if isinstance(a, Prod):
        return Lin.of(Prod(specialize(a.a, tensor, hits), specialize(a.b, tensor, hits)))
    if isinstance(a, Quot):
        return Lin.of(Quot(specialize(a.a, tensor, hits), specialize(a.b, tensor, hits)))
    if a.name == "where":
        pattern = a.arg("pattern")
        match = fnmatch.fnmatchcase(tensor, pattern)
        if hits is not None:
            hits[pattern] = hits.get(pattern, 0) + int(match)
        return specialize(a.arg("a") if match else a.arg("b"), tensor, hits)
    args = []
    for f, v in a.args:
        if isinstance(v, Lin):
            v = specialize(v, tensor, hits)
        elif _lins(v):
            v = tuple(specialize(x, tensor, hits) for x in v)
        args.append((f, v))
    return Lin.of(KernelCall(a.op, tuple(args)))


def is_elementwise(lin: Lin) -> bool:
    """True when the value at each position depends only on the inputs at that position, so the
    tensor can be computed in chunks (linear parts, products, casts; not TIES/DARE/SLERP)."""
    for a, _ in lin.terms:
        if isinstance(a, OperandRef):
            continue
        if isinstance(a, (Prod, Quot)):
            if not (is_elementwise(a.a) and is_elementwise(a.b)):
                return False
        elif a.name == "cast":
            if not is_elementwise(a.arg("model")):
                return False
        else:
            return False
    return True


def describe(lin: Lin, names: list[str] | None = None) -> str:
    """Human form of the folded expression, e.g. "0.2*base + 0.5*m1 + 0.3*m2"."""

    def atom(a: Atom) -> str:
        if isinstance(a, OperandRef):
            return names[a.index] if names else f"models[{a.index}]"
        if isinstance(a, Prod):
            return f"({describe(a.a, names)})*({describe(a.b, names)})"
        if isinstance(a, Quot):
            return f"({describe(a.a, names)})/({describe(a.b, names)})"
        parts = []
        for f, v in a.args:
            if isinstance(v, Lin):
                parts.append(f"{f}={describe(v, names)}")
            elif _lins(v):
                parts.append(f"{f}=[{', '.join(describe(x, names) for x in v)}]")
            else:
                parts.append(f"{f}={v!r}")
        return f"{a.name}({', '.join(parts)})"

    out = []
    for a, k in lin.terms:
        s = atom(a) if k == 1.0 else f"{k:g}*{atom(a)}"
        out.append(s)
    if lin.const or not out:
        out.append(f"{lin.const:g}")
    return " + ".join(out).replace("+ -", "- ")


def coefficient_warnings(lin: Lin) -> list[str]:
    """Coefficients that are probably a mistake (a searched weight out of a sensible range)."""
    lin, _ = output_cast(lin)
    out = []
    if any(isinstance(a, (Prod, Quot)) for a, _ in lin.terms):
        return out
    total = sum(k for _, k in lin.terms)
    if lin.terms and abs(total - 1.0) > 0.5:
        out.append(
            f"the model coefficients sum to {total:g}, not 1: the merged weights are scaled by about {total:g} "
            "(task arithmetic keeps the sum at 1: base + w*(m - base))"
        )
    big = [k for _, k in lin.terms if abs(k) > 4.0]
    if big:
        out.append(f"coefficient {big[0]:g} is large: the result is far outside the span of the models")
    for a, _ in lin.terms:
        if isinstance(a, KernelCall) and "weights" in dict(a.args):
            w = a.arg("weights")
            if w and any(x < 0 for x in w):
                out.append(f"{a.name}(): negative weight in {list(w)}")
    return out
