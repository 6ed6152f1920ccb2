"""Expressions -> typed symbolic values (see expc.spec.ir), creating plan nodes for operator calls.

This module holds the dispatch, names, members and records; calls are in lowering_calls, arithmetic
and merge algebra in lowering_algebra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from expc.interpreter.lowering_algebra import AlgebraLowering
from expc.interpreter.lowering_calls import CallLowering
from expc.interpreter.typed import Typed
from expc.spec.ir import Const, ListV, ParamRef, RecordV, Ref, to_wire
from expc.runtime.types import parse_type
from expc.spec import ast
from expc.spec.diagnostics import did_you_mean

if TYPE_CHECKING:
    from expc.interpreter.checker import Checker

__all__ = ["ExprLowerer", "Typed"]


class ExprLowerer(CallLowering, AlgebraLowering):
    def __init__(self, checker: "Checker"):
        self.c = checker
        self.diags = checker.diags

    # -- entry -------------------------------------------------------------------------------------

    def expr(self, e: ast.Expr, owner: str, node_id: str | None = None, kind: str | None = None) -> Typed | None:
        """Lower and materialize: the result's value is final JSON (no pending algebra tree)."""
        t = self._lower(e, owner, node_id, kind)
        if t is not None and t.tree is not None:
            t = self.materialize(t, owner, node_id, kind)
        return t

    def _lower(self, e: ast.Expr, owner: str, node_id: str | None = None, kind: str | None = None) -> Typed | None:
        if isinstance(e, ast.Int):
            return Typed("int", Const(value=e.value), e.span)
        if isinstance(e, ast.Float):
            return Typed("number", Const(value=e.value), e.span)
        if isinstance(e, ast.Str):
            return Typed("string", Const(value=e.value), e.span)
        if isinstance(e, ast.Bool):
            return Typed("bool", Const(value=e.value), e.span)
        if isinstance(e, ast.NoneLit):
            return Typed("any", Const(value=None), e.span)
        if isinstance(e, ast.ListExpr):
            items = [self.expr(i, owner) for i in e.items]
            if any(i is None for i in items):
                return None
            return Typed("list", ListV(items=tuple(i.value for i in items)), e.span, items=items)
        if isinstance(e, ast.RecordExpr):
            return self._record(e, owner)
        if isinstance(e, ast.Name):
            return self._name(e)
        if isinstance(e, ast.Member):
            return self._member(e, owner)
        if isinstance(e, ast.Call):
            return self._call(e, owner, node_id, kind)
        if isinstance(e, ast.BinOp):
            return self._binop(e, owner)
        if isinstance(e, ast.Neg):
            return self._neg(e, owner)
        raise TypeError(f"unknown expression {e!r}")  # pragma: no cover

    # -- names and members -------------------------------------------------------------------------

    def _record(self, e: ast.RecordExpr, owner: str) -> Typed | None:
        out: dict[str, Any] = {}
        ok = True
        for f in e.fields:
            if f.key in out:
                self.diags.error("E204", f"record key '{f.key}' appears twice", f.key_span)
                ok = False
                continue
            if f.key.startswith("$"):
                self.diags.error("E401", "record keys cannot start with '$'", f.key_span)
                ok = False
                continue
            v = self.expr(f.value, owner)
            if v is None:
                ok = False
                continue
            out[f.key] = v.value
        return Typed("record", RecordV(fields=out), e.span) if ok else None

    def _name(self, e: ast.Name) -> Typed | None:
        c = self.c
        if e.id in c.param_stmts:
            p = c.param(e.id)
            if p is None:
                return None
            return Typed(p.type, ParamRef(name=e.id), e.span)
        if e.id in c.decls:
            t = c.decl_value(e.id)
            if t is None:
                return None
            if e.id in c.nodes:
                return Typed(t.type, Ref(node=e.id), e.span)
            return Typed(t.type, t.value, e.span, items=t.items)
        if e.id in c.registry:
            self.diags.error("E206", f"'{e.id}' is an operator: call it", e.span, hint=f"write {e.id}(...)")
            return None
        names = list(c.decls) + list(c.param_stmts)
        self.diags.error("E201", f"unknown name '{e.id}'", e.span, hint=did_you_mean(e.id, names))
        return None

    def _member(self, e: ast.Member, owner: str) -> Typed | None:
        obj = self.expr(e.obj, owner)
        if obj is None:
            return None
        value = obj.value
        if isinstance(value, ParamRef):
            # a member of a record param: keep it symbolic, so overrides and bindings still apply
            known, current = self.c.param_default(value.name)
            for m in value.path:
                current = current.get(m) if isinstance(current, dict) else None
            if known and isinstance(current, dict) and e.name not in current:
                self.diags.error("E208", f"param '{value.name}' has no field '{e.name}'", e.name_span,
                                 hint=did_you_mean(e.name, current) or "fields: " + ", ".join(current))
                return None
            inner = current.get(e.name) if known and isinstance(current, dict) else None
            return Typed(_json_type(inner) if inner is not None else "any",
                         ParamRef(name=value.name, path=(*value.path, e.name)), e.span)
        if obj.type == "record" and isinstance(value, RecordV):
            if e.name not in value.fields:
                self.diags.error(
                    "E208", f"the record has no field '{e.name}'", e.name_span,
                    hint=did_you_mean(e.name, value.fields) or "fields: " + ", ".join(value.fields),
                )
                return None
            inner = value.fields[e.name]
            return Typed(_json_type(to_wire(inner)), inner, e.span)
        types = self.c.registry.types
        members = types.members(obj.type)
        if types.is_open(obj.type):
            mtype = (members or {}).get(e.name, "any")
        elif members is None or e.name not in members:
            known = sorted(members or {})
            self.diags.error(
                "E208",
                f"a value of type {parse_type(obj.type)[0]} has no member '{e.name}'",
                e.name_span,
                hint=did_you_mean(e.name, known) or (("members: " + ", ".join(known)) if known else None),
            )
            return None
        else:
            mtype = members[e.name]
        if isinstance(value, Ref):
            return Typed(mtype, Ref(node=value.node, path=(*value.path, e.name)), e.span)
        if isinstance(value, RecordV) and e.name in value.fields:
            return Typed(mtype, value.fields[e.name], e.span)
        self.diags.error("E208", f"'{e.name}' cannot be read from this value", e.name_span)
        return None


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        if "$param" in v or "$arith" in v:  # a symbolic number (the wire form of ParamRef / Arith)
            return "number"
        return "record"
    return "any"

