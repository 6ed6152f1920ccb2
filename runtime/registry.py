"""The operator registry: one decorated function per operator, with an explicit pydantic params model.

    class TakeParams(Params):
        data: Input["data"]
        n: int = Field(ge=1, description="number of examples to keep")

    @op("take", params=TakeParams, kinds={"data"}, returns="data", version=1)
    def take(p: TakeParams, ctx) -> ...:
        '''The first n examples of a dataset.'''

The decorator returns an `Operator` object; `load_registry()` collects the `Operator` objects defined
in the modules of `expc.runtime.ops` (modules are imported, never executed for side effects: nothing
is registered globally). Duplicate names are an error at load time. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Annotated, Any, Callable, Literal

from pydantic import BaseModel

from expc.runtime.api import Precheck
from expc.runtime.capabilities import Agrees, Distribution, Evaluates, ReturnsBy
from expc.runtime.params import Params
from expc.runtime.types import TypeSystem, TypeSystemError, ValueType, parse_type
from expc.spec.types import KINDS, TYPES


@dataclass(frozen=True)
class In:
    """Marks a params field as an input that comes from another node (a data source, a model, ...).

    The checker verifies the type of the expression bound to it; at run time the field holds the
    loaded value of the input node.
    """

    types: tuple[str, ...]


@dataclass(frozen=True)
class Variadic:
    """Marks a list field that takes all remaining positional arguments: mix(a, b, c, weights=...)."""


@dataclass(frozen=True)
class IsPath:
    """Marks a string field naming a file or directory. The checker resolves it relative to the .exp
    file that wrote it and reports a missing one at check time; the planner hashes its *content* into
    the node's key, so editing a data file reruns exactly the nodes that read it."""

    kind: str = "any"  # "file" | "dir" | "any"
    keywords: tuple[str, ...] = ()  # values that are not paths (tokenizer = "bytes")


# FilePath / DirPath / AnyPath: annotations of path fields (the operator receives an absolute path).
FilePath = Annotated[str, IsPath("file")]
DirPath = Annotated[str, IsPath("dir")]
AnyPath = Annotated[str, IsPath("any")]


@dataclass(frozen=True)
class Deferred:
    """Marks a field whose node references are *not* computed before the operator runs: the operator
    receives them symbolically and evaluates them itself, under bindings, with ctx.evaluate (a search
    objective is evaluated once per trial with that trial's params)."""


@dataclass(frozen=True)
class Labelled:
    """Marks a record field that may also be written as a list: each item becomes a field named after
    the item's expression, printed canonically, so `table = [ppl, ppl(sweep.best)]` means
    `table = {ppl: ppl, "ppl(sweep.best)": ppl(sweep.best)}` (rows named after what they compute)."""


class _InputFactory:
    def __getitem__(self, types: str | tuple[str, ...]):
        if isinstance(types, str):
            types = (types,)
        for t in types:
            parse_type(t)  # a malformed type expression fails at import; unknown names at collect()
        return Annotated[Any, In(tuple(types))]


# Input["model"] or Input["data", "split"]: the annotation of an input field.
Input = _InputFactory()


@dataclass(frozen=True)
class FieldInfo:
    name: str
    required: bool
    default: Any
    annotation: Any
    description: str
    input_types: tuple[str, ...] | None  # set for inputs; for lists of inputs too
    path_kind: str | None  # set for FilePath / DirPath / AnyPath fields
    path_keywords: tuple[str, ...]  # strings such a field takes that are not paths
    deferred: bool  # node references inside are evaluated by the operator (see Deferred)
    labelled: bool  # a list written here is a record keyed by its items' expressions (see Labelled)
    is_list: bool
    variadic: bool
    constraints: str  # human text: ">= 1", "in [0, 1]"
    # an input field annotated `Literal[...] | Input["optimizer"]` also takes the constants of this
    # annotation (the union's other members), which the params model validates
    constants: Any = None


@dataclass(frozen=True)
class Operator:
    name: str
    fn: Callable[..., Any]
    params: type[Params]
    kinds: frozenset[str]
    returns: str
    version: int
    doc: str
    # Per-tensor merge kernels (runtime/merge) are fused by the algebra compiler rather than run as nodes.
    tensorwise: bool = False
    # A tensorwise operator's per-tensor function, `kernel(p, tensor) -> Tensor` (see `op`): a function,
    # or "module:function" imported only when a merge runs (so declaring it imports no torch).
    kernel: Callable[..., Any] | str | None = None
    # Ops whose result is a pure, cheap value (distributions, objectives, samplers) are folded by the
    # checker into their parent's params instead of becoming nodes of the plan.
    inline: bool = False
    evaluates: Evaluates | None = None
    # What `expc check` can tell before anything runs (see expc.runtime.api.Precheck); None: nothing.
    precheck: Precheck | None = field(default=None, compare=False)
    # Field types that depend on other fields' types (see expc.runtime.capabilities.Agrees).
    agrees: tuple[Agrees, ...] = field(default=(), compare=False)
    # A result type that depends on an argument's type (see expc.runtime.capabilities.ReturnsBy).
    returns_by: ReturnsBy | None = field(default=None, compare=False)
    module: str = ""
    fields: tuple[FieldInfo, ...] = field(default=(), compare=False)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def field(self, name: str) -> FieldInfo | None:
        return self._fields_by_name.get(name)

    @cached_property
    def _fields_by_name(self) -> dict[str, FieldInfo]:
        # the checker and the planner ask for fields by name once per argument of every call
        return {f.name: f for f in self.fields}

    def load_kernel(self) -> Callable[..., Any]:
        """The kernel function of a tensorwise operator, its module imported now if declared by name."""
        if not isinstance(self.kernel, str):
            if self.kernel is None:
                raise RegistryError(f"operator {self.name!r} declares no kernel (it is not tensorwise)")
            return self.kernel
        module, _, attr = self.kernel.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise RegistryError(f"operator {self.name!r}: cannot load its kernel {self.kernel!r}: {e}") from None

    @property
    def summary(self) -> str:
        return (self.doc.strip().splitlines() or [""])[0]


def op(
    name: str,
    *,
    params: type[Params],
    kinds: set[str] | frozenset[str] | tuple[str, ...] = (),
    returns: str,
    version: int = 1,
    tensorwise: bool = False,
    kernel: Callable[..., Any] | str | None = None,
    inline: bool = False,
    evaluates: Evaluates | None = None,
    precheck: Precheck | None = None,
    agrees: tuple[Agrees, ...] = (),
    returns_by: ReturnsBy | None = None,
) -> Callable[[Callable[..., Any]], Operator]:
    """Declare an operator. `kinds` are the declaration kinds it may appear under at top level
    (nested calls only need a matching type); `version` enters cache keys: bump it when results change.

    A `tensorwise` operator (a model-valued merge function) declares its `kernel`: the merge algebra
    calls `kernel(p, tensor)` once per tensor name `tensor`, with `p` its params model whose model
    fields hold that tensor of each argument (float32; a list for a list field), and fuses it into
    the expression it is nested in. Give the function, or "module:function" to import it only then."""
    parse_type(returns)  # names are checked against the declared types when the registry is built
    for k in kinds:
        if k not in KINDS:
            raise TypeError(f"operator {name!r}: unknown kind {k!r}")
    if not (isinstance(params, type) and issubclass(params, Params)):
        raise TypeError(f"operator {name!r}: params must be a subclass of expc.runtime.registry.Params")
    if tensorwise != (kernel is not None):
        raise TypeError(f"operator {name!r}: a kernel is declared exactly when the operator is tensorwise")
    if isinstance(kernel, str) and not all(kernel.partition(":")[::2]):
        raise TypeError(f"operator {name!r}: kernel {kernel!r} is not \"module:function\"")

    def deco(fn: Callable[..., Any]) -> Operator:
        return Operator(
            name=name,
            fn=fn,
            params=params,
            kinds=frozenset(kinds),
            returns=returns,
            version=version,
            doc=inspect.getdoc(fn) or "",
            tensorwise=tensorwise,
            kernel=kernel,
            inline=inline,
            evaluates=evaluates,
            precheck=precheck,
            agrees=tuple(agrees),
            returns_by=returns_by,
            module=fn.__module__,
            fields=_describe_fields(name, params),
        )

    return deco


def _describe_fields(op_name: str, params: type[Params]) -> tuple[FieldInfo, ...]:
    out = []
    for fname, f in params.model_fields.items():
        ann = f.annotation
        meta = list(f.metadata)
        input_types = None
        is_list = False
        variadic = any(isinstance(m, Variadic) for m in meta)
        is_path = next((m for m in meta if isinstance(m, IsPath)), None)
        path_kind = is_path.kind if is_path else None
        for m in meta:
            if isinstance(m, In):
                input_types = m.types
        origin = typing.get_origin(ann)
        constants = None
        if origin is typing.Union or origin is types.UnionType:
            inputs = [a for a in typing.get_args(ann) if typing.get_origin(a) is Annotated
                      and any(isinstance(m, In) for m in typing.get_args(a)[1:])]
            if inputs:  # Literal["adamw", "sgd"] | Input["optimizer"]: an input that also takes constants
                input_types = tuple(t for a in inputs for m in typing.get_args(a)[1:] if isinstance(m, In)
                                    for t in m.types)
                rest = [a for a in typing.get_args(ann) if a not in inputs]
                constants = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]
        if origin in (list, tuple):
            is_list = True
            (item,) = typing.get_args(ann)[:1]
            if typing.get_origin(item) is Annotated:
                for m in typing.get_args(item)[1:]:
                    if isinstance(m, In):
                        input_types = m.types
        if variadic and not is_list:
            raise TypeError(f"operator {op_name!r}: Variadic field {fname!r} must be a list")
        labelled = any(isinstance(m, Labelled) for m in meta)
        if labelled and not _is_record(ann):
            raise TypeError(f"operator {op_name!r}: Labelled field {fname!r} must be a record (a dict)")
        out.append(
            FieldInfo(
                name=fname,
                required=f.is_required(),
                default=None if f.is_required() else f.get_default(call_default_factory=True),
                annotation=ann,
                description=f.description or "",
                input_types=input_types,
                path_kind=path_kind,
                path_keywords=is_path.keywords if is_path else (),
                deferred=any(isinstance(m, Deferred) for m in meta),
                labelled=labelled,
                is_list=is_list,
                variadic=variadic,
                constraints=_constraints(meta),
                constants=constants,
            )
        )
    return tuple(out)


def _is_record(annotation: Any) -> bool:
    """dict, dict[...] or an optional one."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_is_record(a) for a in typing.get_args(annotation) if a is not type(None))
    return annotation is dict or origin is dict


def _constraints(meta: list[Any]) -> str:
    parts = []
    for m in meta:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "len >=")):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
    return ", ".join(parts)


def type_name(annotation: Any) -> str:
    """A short human name for a params field's annotation (for `expc ops NAME`)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        args = typing.get_args(annotation)
        for m in args[1:]:
            if isinstance(m, In):
                return " | ".join(m.types)
        return type_name(args[0])
    if origin is Literal:
        return " | ".join(repr(a).replace("'", '"') for a in typing.get_args(annotation))
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "none"
    names = {int: "int", float: "number", str: "string", bool: "bool", dict: "record", Any: "any"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


class RegistryError(Exception):
    pass


@dataclass(frozen=True)
class Registry:
    ops: Mapping[str, Operator]  # a dict, or (load_registry) a mapping that imports families on demand
    types: TypeSystem = field(default_factory=lambda: TypeSystem({}))

    def get(self, name: str) -> Operator | None:
        return self.ops.get(name)

    def names(self) -> list[str]:
        return sorted(self.ops)

    def __contains__(self, name: str) -> bool:
        return name in self.ops

    def built(self, params: Params, ctx: Any) -> Params:
        """`params` with every inline configuration value ({"$op": name, ...}) in its fields replaced
        by what that inline operator builds (its function's result, or its validated params model
        when the function returns None), innermost first. Validation sees the JSON form (so check
        time, plan time and run time validate the same thing); operators get the built objects.
        Deferred fields keep their symbolic form: the operator evaluates them itself."""
        updates = {}
        for name, value in _fields_of(params):
            f = type(params).model_fields.get(name)
            if f is not None and any(isinstance(m, Deferred) for m in f.metadata):
                continue
            if _has_inline(value):
                updates[name] = self._build_value(value, ctx)
        return params.model_copy(update=updates) if updates else params

    def _build_value(self, value: Any, ctx: Any) -> Any:
        if isinstance(value, dict):
            op = self.ops.get(value.get("$op", "")) if "$op" in value else None
            if op is not None and op.inline:
                p = op.params.model_validate({k: v for k, v in value.items() if k != "$op"})
                p = self.built(p, ctx)
                out = op.fn(p, ctx)
                return p if out is None else out
            return {k: self._build_value(v, ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self._build_value(v, ctx) for v in value]
        return value

    def distribution(self, spec: dict) -> Distribution | None:
        """The validated distribution of a `param NAME ~ DIST` ({"$op": name, ...fields}), or None when
        the operator is not a distribution or its fields are not constants."""
        op = self.ops.get(spec.get("$op", "")) if isinstance(spec, dict) else None
        if op is None or not issubclass(op.params, Distribution):
            return None
        try:
            return op.params.model_validate({k: v for k, v in spec.items() if k != "$op"})
        except Exception:  # symbolic fields (a param as a bound): the checker reports those
            return None


def _fields_of(p: BaseModel):
    yield from ((name, getattr(p, name)) for name in type(p).model_fields)
    yield from (p.model_extra or {}).items()


def _has_inline(value: Any) -> bool:
    if isinstance(value, dict):
        return "$op" in value or any(_has_inline(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_inline(v) for v in value)
    return False


def collect(modules) -> Registry:
    """Build a registry from module objects: the operators and value types they define. A duplicate
    name is an error naming both places, and so is a type an operator names that nobody declares."""
    ops: dict[str, Operator] = {}
    declared: dict[str, ValueType] = {}
    for mod in modules:
        for value in vars(mod).values():
            if isinstance(value, Operator) and value.module == mod.__name__:
                if value.name in ops:
                    other = ops[value.name]
                    raise RegistryError(
                        f"operator {value.name!r} is declared twice: in {other.module} and in {value.module}"
                    )
                ops[value.name] = value
            elif isinstance(value, ValueType) and value.module == mod.__name__:
                if value.name in declared or value.name in TYPES:
                    where = declared[value.name].module if value.name in declared else "expc.spec.types"
                    raise RegistryError(
                        f"value type {value.name!r} is declared twice: in {where} and in {value.module}"
                    )
                declared[value.name] = value
    try:
        types = TypeSystem(declared)
    except TypeSystemError as e:
        raise RegistryError(str(e)) from None
    for o in ops.values():
        _check_types(o, types)
    return Registry(ops, types)


def _check_types(o: Operator, types: TypeSystem) -> None:
    fields = {f.name for f in o.fields}

    def check(expr: str, what: str) -> None:
        name, args = parse_type(expr)
        if name.startswith("{"):
            if any(f not in fields for f in name.strip("{}").split("|")):
                raise RegistryError(f"operator {o.name!r}: {what} names no argument: {expr!r}")
        elif not types.known(name):
            raise RegistryError(f"operator {o.name!r} ({o.module}): {what} is an unknown type {name!r}")
        for a in args:
            check(a, what)

    check(o.returns, "its return type")
    for f in o.fields:
        for t in f.input_types or ():
            check(t, f"argument {f.name!r}")


def builtin_modules() -> list[types.ModuleType]:
    """The modules of expc.runtime.ops, in name order (deterministic)."""
    import expc.runtime.ops as pkg

    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    # __import__ rather than importlib.import_module: the same import, but through the interpreter's
    # own import path, so `python -X importtime` shows what declaring each family costs
    return [__import__(f"{pkg.__name__}.{n}") and sys.modules[f"{pkg.__name__}.{n}"] for n in names]


@lru_cache(maxsize=1)
def load_registry() -> Registry:
    """Every operator and value type in expc.runtime.ops. A plugin's registry is
    `collect([*builtin_modules(), plugin_module])`: nothing is registered by importing anything.

    While ops/_index.json describes the ops modules as they are (see expc.runtime.ops_index), a family's
    module is imported when one of its operators or types is first looked up, not before; the index
    was built by `collect`, so its names are unique and its types known (tests/test_ops_index.py)."""
    from expc.runtime import ops_index

    index = ops_index.read_index()
    if index is None:
        return collect(builtin_modules())
    ops = ops_index.LazyDeclarations(index["ops"], lambda mod, name: _declared_in(mod, Operator, name))
    declared = ops_index.LazyDeclarations(index["types"], lambda mod, name: _declared_in(mod, ValueType, name))
    return Registry(ops, TypeSystem(declared, validate=False))


def _declared_in(module: types.ModuleType, kind: type, name: str) -> Any:
    for value in vars(module).values():
        if isinstance(value, kind) and value.name == name and value.module == module.__name__:
            return value
    raise KeyError(name)  # the index is stale in a way its digest did not catch (not expected)
