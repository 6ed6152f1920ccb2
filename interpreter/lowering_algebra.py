"""Lowering of arithmetic: numbers fold to constants (or symbolic $arith over params); model
arithmetic and tensorwise merge operators build one pending tree, materialized into a single
`algebra` node where it is used, so the merge runtime fuses the whole expression per tensor."""

from __future__ import annotations

import math
from typing import Any

from expc.interpreter import symbolic
from expc.interpreter.typed import NUM, Leaf, Typed
from expc.spec import ast
from expc.spec.diagnostics import Span
from expc.spec.ir import Arith, Const, ListV, OpNode, ParamRef, RecordV, Ref, children, const, to_wire, walk


class AlgebraLowering:
    """Mixed into ExprLowerer (expc.interpreter.lowering): uses its `c` (checker), `diags`, `_lower`."""

    # -- arithmetic --------------------------------------------------------------------------------

    def _binop(self, e: ast.BinOp, owner: str) -> Typed | None:
        l = self._lower(e.left, owner)
        r = self._lower(e.right, owner)
        if l is None or r is None:
            return None
        lt, rt = l.type, r.type
        if lt in NUM and rt in NUM:
            return self._scalar(e.op, [l, r], e.span)
        if lt == "any" or rt == "any":
            return Typed("any", Arith(op=e.op, args=(l.value, r.value)), e.span)
        op_words = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
        # arithmetic on a type that declares an algebra (models: merge algebra) builds a pending tree
        types = self.c.registry.types
        la, ra = types.algebra_type(lt), types.algebra_type(rt)
        if la or ra:
            # the result keeps the operands' type when they share it (classifier + classifier is a
            # classifier), else the type that declares the algebra (a classifier + a model is a model)
            alg = (lt if lt == rt else la) if la else ra
            both = la is not None and la == ra
            scaled = (la and rt in NUM) or (ra and lt in NUM)
            alg = lt if la and rt in NUM else rt if ra and lt in NUM else alg
            if (e.op in "+-" and both) or (e.op == "*" and scaled) or (e.op == "/" and la and rt in NUM):
                return Typed(alg, None, e.span,
                             tree={"op": {"+": "add", "-": "sub", "*": "mul", "/": "div"}[e.op],
                                   "args": [self._tree_of(l), self._tree_of(r)]})
            if both:
                hint = f"scale {_a(alg)} by a number instead: 0.5 * m"
            elif e.op in "+-":
                hint = "merge algebra adds models to models, e.g. base + 0.5*(m1 - base)"
            else:
                hint = f"{_a(alg)} can only be divided by a number"
            self.diags.error(
                "E301",
                f"cannot {op_words[e.op]} {_a(lt)} {'and' if e.op in '+*' else 'by' if e.op == '/' else 'and'} "
                f"{_a(rt)}",
                e.span,
                hint=hint,
            )
            return None
        if e.op == "+" and lt == rt == "string" and l.const and r.const:
            return Typed("string", l.value + r.value, e.span)
        self.diags.error("E301", f"cannot {op_words[e.op]} {_a(lt)} and {_a(rt)}", e.span)
        return None

    def _neg(self, e: ast.Neg, owner: str) -> Typed | None:
        x = self._lower(e.operand, owner)
        if x is None:
            return None
        if x.type in NUM:
            return self._scalar("neg", [x], e.span)
        alg = self.c.registry.types.algebra_type(x.type)
        if alg is not None:
            return Typed(alg, None, e.span, tree={"op": "neg", "args": [self._tree_of(x)]})
        self.diags.error("E301", f"cannot negate {_a(x.type)}", e.span)
        return None

    def _scalar(self, op: str, args: list[Typed], span: Span) -> Typed | None:
        is_int = all(a.type == "int" for a in args) and op != "/"
        rtype = "int" if is_int else "number"
        if all(a.const for a in args):
            try:
                v = symbolic.arith(op, [to_wire(a.value) for a in args])
            except ZeroDivisionError:
                self.diags.error("E303", "division by zero", span)
                return None
            if isinstance(v, float) and not math.isfinite(v):
                self.diags.error("E303", "the result is not a finite number", span)
                return None
            return Typed(rtype, Const(value=v), span)
        return Typed(rtype, Arith(op=op, args=tuple(a.value for a in args)), span)

    # -- algebra materialization -------------------------------------------------------------------

    def materialize(self, t: Typed, owner: str, node_id: str | None, kind: str | None) -> Typed | None:
        """Turn a pending algebra tree into one node of the operator its type declares (models: `algebra`),
        with numbered operands."""
        name = self.c.registry.types.algebra(t.type)
        op = self.c.registry.get(name) if name else None
        if op is None:
            self.diags.error("E206", f"arithmetic on {_a(t.type)} needs the '{name}' operator, which is not "
                             "installed", t.span)
            return None
        models: list[Any] = []
        index: dict[Any, int] = {}
        spans: dict[str, Span] = {"expr": t.span}

        def conv(x):
            if isinstance(x, Leaf):
                key = x.typed.value
                if key not in index:
                    index[key] = len(models)
                    spans[f"models.{len(models)}"] = x.typed.span
                    models.append(x.typed.value)
                return RecordV(fields={"model": Const(value=index[key])})
            if isinstance(x, dict):
                return RecordV(fields={k: conv(v) for k, v in x.items()})
            if isinstance(x, list):
                return ListV(items=tuple(conv(v) for v in x))
            return const(x)

        expr = conv(t.tree)
        self._warn_weights(expr, t.span)
        nid = node_id or self.c.fresh_id(owner, "merge")
        self.c.add_node(
            OpNode(id=nid, kind=kind if node_id else None, op=op.name, version=op.version, type=t.type,
                 args={"models": ListV(items=tuple(models)), "expr": expr}, span=t.span, arg_spans=spans)
        )
        return Typed(t.type, Ref(node=nid), t.span)


    def _warn_weights(self, expr: Any, span: Span) -> None:
        """A searched merge weight whose range leaves [-1, 2] is almost always a mistake: warn."""
        for _, v in walk(expr):
            if not (isinstance(v, RecordV) and v.fields.get("op") in ("mul", "div")):
                continue
            for _, a in children(v.fields.get("args")):
                if not isinstance(a, ParamRef):
                    continue
                p = self.c.params.get(a.name)
                dist = self.c.distribution(p) if p is not None else None
                bounds = dist.bounds() if dist is not None else None
                if bounds is None:
                    continue
                lo, hi = (symbolic.plain_number(b) for b in bounds)
                if lo < -1 or hi > 2:
                    self.diags.warning(
                        "W301",
                        f"searched merge weight '{p.name}' ranges over [{lo}, {hi}]; weights outside [-1, 2] "
                        "rarely give a useful model",
                        span,
                        notes=[(f"'{p.name}' is declared here", p.span)],
                    )




def _a(t: str) -> str:
    return ("an " if t[:1] in "aeiou" else "a ") + t

