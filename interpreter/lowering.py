"""Expressions -> typed symbolic values (see expc.spec.ir), creating plan nodes for operator calls.

Model arithmetic and tensorwise merge operators (ties, dare, slerp, ...) build one pending tree that is
materialized into a single `algebra` node where it is used, so the merge runtime can fuse the whole
expression into one per-tensor function.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from expc.interpreter import symbolic
from expc.runtime.registry import Operator, type_name
from expc.spec import ast
from expc.spec.diagnostics import Span, did_you_mean
from expc.spec.ir import Node
from expc.spec.types import MEMBERS, accepts, describe

if TYPE_CHECKING:
    from expc.interpreter.checker import Checker

_NUM = {"int", "number"}
# Types whose values are computed by nodes: never accepted where a plain constant is expected.
NODE_TYPES = {"data", "split", "model", "env", "metric", "search", "poet", "report", "tokenizer", "agent"}


@dataclass
class Typed:
    type: str
    value: Any
    span: Span
    items: list["Typed"] | None = None  # element values of a list expression
    tree: Any = None  # pending merge-algebra tree (type "model"), see ExprLowerer.materialize

    @property
    def const(self) -> bool:
        return not any(
            isinstance(v, dict) and ({"$ref", "$param", "$arith", "$bind"} & v.keys())
            for _, v in symbolic.walk(self.value)
        )


@dataclass
class _Leaf:
    """A model operand inside a pending algebra tree."""

    typed: Typed


class ExprLowerer:
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
            return Typed("int", e.value, e.span)
        if isinstance(e, ast.Float):
            return Typed("number", e.value, e.span)
        if isinstance(e, ast.Str):
            return Typed("string", e.value, e.span)
        if isinstance(e, ast.Bool):
            return Typed("bool", e.value, e.span)
        if isinstance(e, ast.NoneLit):
            return Typed("any", None, e.span)
        if isinstance(e, ast.ListExpr):
            items = [self.expr(i, owner) for i in e.items]
            if any(i is None for i in items):
                return None
            return Typed("list", [i.value for i in items], e.span, items=items)
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
        return Typed("record", out, e.span) if ok else None

    def _name(self, e: ast.Name) -> Typed | None:
        c = self.c
        if e.id in c.param_stmts:
            p = c.param(e.id)
            if p is None:
                return None
            return Typed(p.type, {"$param": e.id}, e.span)
        if e.id in c.decls:
            t = c.decl_value(e.id)
            if t is None:
                return None
            if e.id in c.nodes:
                return Typed(t.type, {"$ref": e.id}, e.span)
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
        if symbolic.is_tagged(value, "$param"):
            # a member of a record param: keep it symbolic, so overrides and bindings still apply
            known, current = self.c.param_default(value["$param"])
            for m in value.get("path", []):
                current = current.get(m) if isinstance(current, dict) else None
            if known and isinstance(current, dict) and e.name not in current:
                self.diags.error("E208", f"param '{value['$param']}' has no field '{e.name}'", e.name_span,
                                 hint=did_you_mean(e.name, current) or "fields: " + ", ".join(current))
                return None
            inner = current.get(e.name) if known and isinstance(current, dict) else None
            return Typed(_json_type(inner) if inner is not None else "any",
                         {"$param": value["$param"], "path": [*value.get("path", []), e.name]}, e.span)
        if obj.type == "record" and isinstance(value, dict) and not symbolic.is_tagged(value, "$ref"):
            if e.name not in value:
                self.diags.error(
                    "E208", f"the record has no field '{e.name}'", e.name_span,
                    hint=did_you_mean(e.name, value) or "fields: " + ", ".join(value),
                )
                return None
            inner = value[e.name]
            return Typed(_json_type(inner), inner, e.span)
        members = MEMBERS.get(obj.type)
        if obj.type in ("record", "any"):
            mtype = "any"
        elif members is None or e.name not in members:
            known = sorted(members or {})
            self.diags.error(
                "E208",
                f"a value of type {obj.type} has no member '{e.name}'",
                e.name_span,
                hint=did_you_mean(e.name, known) or (("members: " + ", ".join(known)) if known else None),
            )
            return None
        else:
            mtype = members[e.name]
        if symbolic.is_tagged(value, "$ref"):
            return Typed(mtype, {"$ref": value["$ref"], "path": [*value.get("path", []), e.name]}, e.span)
        if isinstance(value, dict) and e.name in value:
            return Typed(mtype, value[e.name], e.span)
        self.diags.error("E208", f"'{e.name}' cannot be read from this value", e.name_span)
        return None

    # -- calls -------------------------------------------------------------------------------------

    def _call(self, e: ast.Call, owner: str, node_id: str | None, kind: str | None) -> Typed | None:
        if not isinstance(e.func, ast.Name):
            self.diags.error("E206", "only operators and declared names can be called", e.func.span)
            return None
        name = e.func.id
        op = self.c.registry.get(name)
        if op is not None:
            return self._op_call(op, e, owner, node_id, kind)
        if name in self.c.decls:
            return self._bind(name, e, owner, node_id, kind)
        if name in self.c.param_stmts:
            self.diags.error("E206", f"'{name}' is a param, not an operator", e.func.span)
            return None
        hint = did_you_mean(name, list(self.c.registry.names()) + list(self.c.decls))
        self.diags.error("E206", f"unknown operator '{name}'", e.func.span,
                         hint=hint or "`expc ops` lists the operators")
        return None

    def _bind_args(self, op: Operator, e: ast.Call) -> dict[str, Any] | None:
        """Match positional and keyword arguments to the operator's fields (ast expressions)."""
        fields = op.fields
        bound: dict[str, Any] = {}
        ok = True
        i = 0
        for pos, arg in enumerate(e.args):
            if i >= len(fields):
                names = ", ".join(f.name for f in fields)
                self.diags.error(
                    "E404",
                    f"{op.name}() takes at most {len(fields)} positional argument"
                    f"{'s' if len(fields) != 1 else ''} ({names}), got {len(e.args)}",
                    arg.span,
                )
                return None
            f = fields[i]
            if f.variadic:
                bound[f.name] = list(e.args[pos:])
                break
            bound[f.name] = arg
            i += 1
        allow_extra = op.params.model_config.get("extra") == "allow"
        names = [f.name for f in fields]
        for kw in e.kwargs:
            if kw.name in bound:
                self.diags.error("E405", f"argument '{kw.name}' of {op.name}() is given twice", kw.name_span)
                ok = False
            elif kw.name not in names and not allow_extra:
                hint = did_you_mean(kw.name, names) or ("parameters: " + ", ".join(names) if names else None)
                self.diags.error("E402", f"{op.name}() has no parameter '{kw.name}'", kw.name_span, hint=hint)
                ok = False
            else:
                bound[kw.name] = kw.value
        # a misspelled keyword already got "did you mean 'steps'?": don't also say 'steps' is missing
        suggested = {m for kw in e.kwargs if kw.name not in names
                     for m in difflib.get_close_matches(kw.name, names, n=1, cutoff=0.6)}
        for f in fields:
            if f.required and f.name not in bound and f.name not in suggested:
                sig = ", ".join(x.name for x in fields if x.required)
                self.diags.error("E403", f"{op.name}() is missing the required argument '{f.name}'", e.span,
                                 hint=f"{op.name}({sig}, ...)")
                ok = False
        return bound if ok else None

    def _op_call(self, op: Operator, e: ast.Call, owner: str, node_id: str | None, kind: str | None) -> Typed | None:
        bound = self._bind_args(op, e)
        if bound is None:
            return None
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        trees: dict[str, Any] = {}
        ok = True
        for fname, arg in bound.items():
            f = op.field(fname)
            lowered = self._field_value(op, fname, f, arg, owner, tensorwise=op.tensorwise)
            if lowered is None:
                ok = False
                continue
            typed, field_spans, tree = lowered
            values[fname] = typed.value
            spans.update(field_spans)
            if tree is not None:
                trees[fname] = tree
        if not ok:
            return None
        ok = self._validate(op, values, spans, e.span)
        if not ok:
            return None
        if op.inline:
            return Typed(op.returns, {"$op": op.name, **values}, e.span)
        if op.tensorwise:
            args = {k: trees.get(k, v) for k, v in values.items()}
            return Typed("model", None, e.span, tree={"op": "call", "name": op.name, "args": args})
        nid = node_id or self.c.fresh_id(owner, op.name)
        self.c.add_node(
            Node(id=nid, kind=kind if node_id else None, op=op.name, version=op.version, type=op.returns,
                 args=values, span=e.span, arg_spans=spans)
        )
        return Typed(op.returns, {"$ref": nid}, e.span)

    def _field_value(self, op: Operator, fname: str, f, arg, owner: str, tensorwise: bool):
        """Lower one argument and check it against its field: (typed, spans, pending tree) or None."""
        spans: dict[str, Span] = {}
        if isinstance(arg, list):  # variadic
            arg_span = arg[0].span.to(arg[-1].span) if arg else None
            items = [self._operand(a, owner, tensorwise and f.input_types is not None) for a in arg]
            if any(i is None for i in items):
                return None
            typed = Typed("list", [i.value for i in items], arg_span, items=items)
        elif tensorwise and f is not None and f.input_types is not None and isinstance(arg, ast.ListExpr):
            items = [self._operand(a, owner, True) for a in arg.items]
            if any(i is None for i in items):
                return None
            typed = Typed("list", [i.value for i in items], arg.span, items=items)
        else:
            typed = self._operand(arg, owner, tensorwise and f is not None and f.input_types is not None)
            if typed is None:
                return None
        span = typed.span or getattr(arg, "span", None)
        spans[fname] = span
        if typed.items is not None:
            for i, it in enumerate(typed.items):
                spans[f"{fname}.{i}"] = it.span
        what = f"argument '{fname}' of {op.name}()"
        if f is None:  # an extra keyword of an operator that allows them (gym(...))
            if typed.type in NODE_TYPES:
                self.diags.error("E301", f"{what} must be a constant, got {typed.type}", span)
                return None
            return typed, spans, None
        if f.input_types is not None:
            if f.is_list:
                items = typed.items
                if items is None:
                    if typed.type not in ("list", "any"):
                        self.diags.error("E301", f"{what} expects a list of {describe(f.input_types)}, "
                                         f"got {typed.type}", span)
                        return None
                    items = []
                for it in items:
                    if not accepts(it.type, f.input_types):
                        self.diags.error("E301", f"{what} expects a list of {describe(f.input_types)}, "
                                         f"but an item is {it.type}", it.span)
                        return None
            elif not accepts(typed.type, f.input_types):
                self.diags.error("E301", f"{what} expects {describe(f.input_types)}, got {typed.type}", span)
                return None
        elif typed.type in NODE_TYPES and not f.deferred:
            self.diags.error("E301", f"{what} expects {type_name(f.annotation)}, got {typed.type}", span)
            return None
        if f.path_kind is not None:
            resolved = self._path(typed, f.path_kind, what, span)
            if resolved is None:
                return None
            typed = Typed(typed.type, resolved, typed.span)
        tree = None
        if tensorwise and f.input_types is not None:
            tree = [self._tree_of(i) for i in typed.items] if f.is_list and typed.items is not None else self._tree_of(typed)
        return typed, spans, tree

    def _operand(self, a: ast.Expr, owner: str, keep_tree: bool) -> Typed | None:
        return self._lower(a, owner) if keep_tree else self.expr(a, owner)

    def _tree_of(self, t: Typed) -> Any:
        if t.tree is not None:
            return t.tree
        if t.type == "model":
            return _Leaf(t)
        return t.value

    def _path(self, typed: Typed, kind: str, what: str, span: Span) -> dict | None:
        if typed.type != "string" or not typed.const:
            self.diags.error("E301", f"{what} expects a path string, got {typed.type}", span)
            return None
        base = Path(span.file).resolve().parent if span else Path.cwd()
        path = (base / typed.value).resolve()
        exists = path.is_file() if kind == "file" else path.is_dir() if kind == "dir" else path.exists()
        if not exists:
            noun = {"file": "file", "dir": "directory"}.get(kind, "path")
            found_other = path.exists()
            self.diags.error(
                "E501",
                f"{noun} not found: '{typed.value}'" + (f" (it is not a {noun})" if found_other else ""),
                span,
                hint=f"paths are relative to the .exp file: looked for {path}",
            )
            return None
        return {"$file": str(path), "kind": kind}

    def _validate(self, op: Operator, values: dict[str, Any], spans: dict[str, Span], call_span: Span) -> bool:
        """Validate constants against the params model now, so range errors are check errors."""
        from expc.interpreter.checker import _UNKNOWN

        sample: dict[str, Any] = {}
        unknown: set[str] = set()
        for k, v in values.items():
            if op.field(k) is not None and op.field(k).deferred:
                sample[k] = v
                continue
            r = self.c.resolve_defaults(_placeholders(v))
            if any(x is _UNKNOWN for _, x in symbolic.walk(r)):
                unknown.add(k)
                continue
            sample[k] = r
        try:
            op.params.model_validate(sample)
        except ValidationError as err:
            errors = [x for x in err.errors() if not (x.get("loc") and str(x["loc"][0]) in unknown)]
            if errors:
                self.c.report_validation(_Filtered(errors), spans, call_span, f"{op.name}()")
                return False
        return self._validate_ranges(op, values, sample, spans, call_span)

    def _validate_ranges(self, op, values, sample, spans, call_span) -> bool:
        """A searched param used directly as an argument: both ends of its range must be valid."""
        ok = True
        for k, v in values.items():
            if not symbolic.is_tagged(v, "$param"):
                continue
            p = self.c.params.get(v["$param"])
            if p is None or p.dist is None or "lo" not in p.dist or "hi" not in p.dist:
                continue
            for end in ("lo", "hi"):
                try:
                    op.params.model_validate({**sample, k: p.dist[end]})
                except ValidationError as err:
                    bad = [x for x in err.errors() if x.get("loc") and str(x["loc"][0]) == k]
                    if bad:
                        self.diags.error(
                            "E401",
                            f"the search range of '{p.name}' [{p.dist['lo']}, {p.dist['hi']}] includes invalid "
                            f"values for '{k}' of {op.name}(): {bad[0]['msg']}",
                            spans.get(k, call_span),
                            notes=[(f"'{p.name}' is declared here", p.span)],
                        )
                        ok = False
                        break
        return ok

    # -- re-instantiation: node(param = value) / node(search.best) -----------------------------------

    def _bind(self, name: str, e: ast.Call, owner: str, node_id: str | None, kind: str | None) -> Typed | None:
        target = self.c.decl_value(name)
        if target is None:
            return None
        if name not in self.c.nodes:
            self.diags.error("E206", f"'{name}' is a value, not a node: it cannot be re-instantiated", e.func.span)
            return None
        bindings: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        ok = True
        for kw in e.kwargs:
            if kw.name not in self.c.param_stmts:
                self.diags.error(
                    "E207", f"'{kw.name}' is not a param, so it cannot be bound", kw.name_span,
                    hint=did_you_mean(kw.name, self.c.param_stmts) or "bind params: node(param = value)",
                )
                ok = False
                continue
            v = self.expr(kw.value, owner)
            if v is None:
                ok = False
                continue
            if v.type in NODE_TYPES:
                self.diags.error("E301", f"param '{kw.name}' cannot be bound to a {v.type}", kw.value.span)
                ok = False
                continue
            bindings[kw.name] = v.value
            spans[f"bindings.{kw.name}"] = kw.value.span
        frm = None
        if len(e.args) > 1:
            self.diags.error("E404", f"{name}(...) takes at most one positional argument: a record of params "
                             "such as a search's .best", e.args[1].span)
            ok = False
        elif e.args:
            f = self.expr(e.args[0], owner)
            if f is None:
                ok = False
            elif f.type not in ("record", "any"):
                self.diags.error("E301", f"{name}(...) expects a record of params (e.g. sweep.best), got {f.type}",
                                 e.args[0].span)
                ok = False
            else:
                frm = f.value
                spans["from"] = e.args[0].span
        if not ok:
            return None
        nid = node_id or self.c.fresh_id(owner, name)
        self.c.add_node(
            Node(id=nid, kind=kind if node_id else None, op="bind", type=target.type,
                 args={"target": name, "bindings": bindings, "from": frm}, span=e.span, arg_spans=spans)
        )
        return Typed(target.type, {"$ref": nid}, e.span)

    # -- arithmetic --------------------------------------------------------------------------------

    def _binop(self, e: ast.BinOp, owner: str) -> Typed | None:
        l = self._lower(e.left, owner)
        r = self._lower(e.right, owner)
        if l is None or r is None:
            return None
        lt, rt = l.type, r.type
        if lt in _NUM and rt in _NUM:
            return self._scalar(e.op, [l, r], e.span)
        if lt == "any" or rt == "any":
            return Typed("any", {"$arith": e.op, "args": [self._final(l), self._final(r)]}, e.span)
        op_words = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
        if "model" in (lt, rt):
            models = lt == "model" and rt == "model"
            scaled = (lt == "model" and rt in _NUM) or (rt == "model" and lt in _NUM)
            if (e.op in "+-" and models) or (e.op == "*" and scaled) or (e.op == "/" and lt == "model" and rt in _NUM):
                return Typed("model", None, e.span,
                             tree={"op": {"+": "add", "-": "sub", "*": "mul", "/": "div"}[e.op],
                                   "args": [self._tree_of(l), self._tree_of(r)]})
            if models:
                hint = "scale a model by a number instead: 0.5 * m"
            elif e.op in "+-":
                hint = "merge algebra adds models to models, e.g. base + 0.5*(m1 - base)"
            else:
                hint = "a model can only be divided by a number"
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
        if x.type in _NUM:
            return self._scalar("neg", [x], e.span)
        if x.type == "model":
            return Typed("model", None, e.span, tree={"op": "neg", "args": [self._tree_of(x)]})
        self.diags.error("E301", f"cannot negate {_a(x.type)}", e.span)
        return None

    def _scalar(self, op: str, args: list[Typed], span: Span) -> Typed | None:
        is_int = all(a.type == "int" for a in args) and op != "/"
        rtype = "int" if is_int else "number"
        if all(a.const for a in args):
            try:
                v = symbolic.arith(op, [a.value for a in args])
            except ZeroDivisionError:
                self.diags.error("E303", "division by zero", span)
                return None
            if isinstance(v, float) and not math.isfinite(v):
                self.diags.error("E303", "the result is not a finite number", span)
                return None
            return Typed(rtype, v, span)
        return Typed(rtype, {"$arith": op, "args": [a.value for a in args]}, span)

    def _final(self, t: Typed) -> Any:
        return t.value

    # -- algebra materialization -------------------------------------------------------------------

    def materialize(self, t: Typed, owner: str, node_id: str | None, kind: str | None) -> Typed | None:
        """Turn a pending model-algebra tree into one `algebra` node with numbered model operands."""
        op = self.c.registry.get("algebra")
        if op is None:
            self.diags.error("E206", "model arithmetic needs the 'algebra' operator, which is not installed", t.span)
            return None
        models: list[Any] = []
        index: dict[str, int] = {}
        spans: dict[str, Span] = {"expr": t.span}

        def conv(x):
            if isinstance(x, _Leaf):
                key = symbolic.canonical(x.typed.value)
                if key not in index:
                    index[key] = len(models)
                    spans[f"models.{len(models)}"] = x.typed.span
                    models.append(x.typed.value)
                return {"model": index[key]}
            if isinstance(x, dict):
                return {k: conv(v) for k, v in x.items()}
            if isinstance(x, list):
                return [conv(v) for v in x]
            return x

        expr = conv(t.tree)
        self._warn_weights(expr, t.span)
        nid = node_id or self.c.fresh_id(owner, "merge")
        self.c.add_node(
            Node(id=nid, kind=kind if node_id else None, op="algebra", version=op.version, type="model",
                 args={"models": models, "expr": expr}, span=t.span, arg_spans=spans)
        )
        return Typed("model", {"$ref": nid}, t.span)


    def _warn_weights(self, expr: Any, span: Span) -> None:
        """A searched merge weight whose range leaves [-1, 2] is almost always a mistake: warn."""
        for _, v in symbolic.walk(expr):
            if not (isinstance(v, dict) and v.get("op") in ("mul", "div")):
                continue
            for a in v.get("args", []):
                if not symbolic.is_tagged(a, "$param"):
                    continue
                p = self.c.params.get(a["$param"])
                if p is None or p.dist is None or "lo" not in p.dist:
                    continue
                lo, hi = p.dist["lo"], p.dist["hi"]
                if lo < -1 or hi > 2:
                    self.diags.warning(
                        "W301",
                        f"searched merge weight '{p.name}' ranges over [{lo}, {hi}]; weights outside [-1, 2] "
                        "rarely give a useful model",
                        span,
                        notes=[(f"'{p.name}' is declared here", p.span)],
                    )


class _Filtered:
    """A list of pydantic error dicts that quacks like ValidationError.errors() for report_validation."""

    def __init__(self, errors):
        self._errors = errors

    def errors(self):
        return self._errors


def _placeholders(v: Any) -> Any:
    """Values as the params model sees them at check time: inputs and files as plain strings."""

    def fn(x):
        if symbolic.is_tagged(x, "$ref"):
            return f"<{x['$ref']}>"
        if symbolic.is_tagged(x, "$file"):
            return x["$file"]
        return None

    return symbolic.transform(v, fn)


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
        if symbolic.is_tagged(v, "$param") or symbolic.is_tagged(v, "$arith"):
            return "number"
        return "record"
    return "any"


def _a(t: str) -> str:
    return ("an " if t[:1] in "aeiou" else "a ") + t
