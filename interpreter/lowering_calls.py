"""Lowering of calls: an operator call becomes a node (or an inline value, or part of a merge tree);
a declared node called with params bound becomes a `bind` node. Arguments are matched to the
operator's fields, type-checked, and their constant parts validated by its params model now, so range
errors are check errors with the argument's span."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from expc.interpreter import symbolic
from expc.interpreter.typed import Leaf, Typed
from expc.runtime.registry import Operator, type_name
from expc.spec import ast
from expc.spec.diagnostics import Span, did_you_mean
from expc.spec.ir import BindNode, Const, FileRef, Inline, ListV, OpNode, ParamRef, RecordV, Ref, refs, to_wire
from expc.runtime.types import template_fields
from expc.spec.types import TYPES, describe


class CallLowering:
    """Mixed into ExprLowerer (expc.interpreter.lowering): uses its `c` (checker), `diags`, `expr`, `_lower`."""

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
        arg_types: dict[str, str] = {}
        ok = True
        for fname, arg in bound.items():
            f = op.field(fname)
            lowered = self._field_value(op, fname, f, arg, owner, tensorwise=op.tensorwise)
            if lowered is None:
                ok = False
                continue
            typed, field_spans, tree = lowered
            values[fname] = typed.value
            arg_types[fname] = self._element_type(op, fname, typed)
            if arg_types[fname] is None:
                ok = False
            spans.update(field_spans)
            if tree is not None:
                trees[fname] = tree
        if not ok or not self._agree(op, arg_types, spans, e.span):
            return None
        ok = self._validate(op, values, spans, e.span)
        if not ok:
            return None
        rtype = self.c.registry.types.fill_returns(op.returns, lambda name: arg_types.get(name, "any"))
        if op.returns_by is not None:
            rtype = op.returns_by.type_for(self.c.registry.types, arg_types.get(op.returns_by.field)) or rtype
        if op.inline:
            return Typed(rtype, Inline(op=op.name, args=values), e.span)
        if op.tensorwise:
            args = {k: trees.get(k, v) for k, v in values.items()}
            return Typed(rtype, None, e.span, tree={"op": "call", "name": op.name, "args": args})
        nid = node_id or self.c.fresh_id(owner, op.name)
        self.c.add_node(
            OpNode(id=nid, kind=kind if node_id else None, op=op.name, version=op.version, type=rtype,
                 args=values, span=e.span, arg_spans=spans)
        )
        return Typed(rtype, Ref(node=nid), e.span)

    def _agree(self, op: Operator, arg_types: dict[str, str | None], spans: dict[str, Span], span: Span) -> bool:
        """The operator's field types that depend on each other (Agrees) hold; else an E301."""
        types = self.c.registry.types
        for rule in op.agrees:
            on, got = arg_types.get(rule.on), arg_types.get(rule.field)
            if on is None or got is None or got == "any":
                continue
            wanted = rule.wanted(types, on)
            if wanted is not None and not types.accepts(got, wanted):
                self.diags.error("E301", f"argument '{rule.field}' of {op.name}() expects {describe(wanted)}, got {got}",
                                 spans.get(rule.field, span),
                                 hint=f"with '{rule.on}' of type {on}, {op.name}() takes {describe(wanted)}")
                return False
        return True

    def _element_type(self, op: Operator, fname: str, typed: Typed) -> str | None:
        """The type `{fname}` stands for in the operator's return type: the argument's type, or for a
        list of inputs the one type its items share (mix(a, b) is data only if a and b are); None
        (with a diagnostic) when the items of a list the return type depends on disagree."""
        if typed.items is None or fname not in template_fields(op.returns):
            return typed.type
        types = self.c.registry.types
        if "{" + fname + "}" not in op.returns:  # joined with other arguments (`{base|models}`)
            return types.join(it.type for it in typed.items)
        common: str | None = None
        for it in typed.items:
            if common is None or types.is_subtype(common, it.type):
                common = it.type
            elif not types.is_subtype(it.type, common):
                self.diags.error("E301", f"the items of '{fname}' of {op.name}() must have one type, got "
                                 f"{common} and {it.type}", it.span,
                                 hint=f"{op.name}() combines values of one type")
                return None
        return common or "any"

    def _field_value(self, op: Operator, fname: str, f, arg, owner: str, tensorwise: bool):
        """Lower one argument and check it against its field: (typed, spans, pending tree) or None."""
        spans: dict[str, Span] = {}
        if isinstance(arg, list):  # variadic
            arg_span = arg[0].span.to(arg[-1].span) if arg else None
            items = [self._operand(a, owner, tensorwise and f.input_types is not None) for a in arg]
            if any(i is None for i in items):
                return None
            typed = Typed("list", _list(items), arg_span, items=items)
        elif f is not None and f.labelled and isinstance(arg, ast.ListExpr):
            typed = self._labelled(fname, arg, owner, spans)
            if typed is None:
                return None
        elif tensorwise and f is not None and f.input_types is not None and isinstance(arg, ast.ListExpr):
            items = [self._operand(a, owner, True) for a in arg.items]
            if any(i is None for i in items):
                return None
            typed = Typed("list", _list(items), arg.span, items=items)
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
        types = self.c.registry.types
        if f is None:  # an extra keyword of an operator that allows them (gym(...))
            if types.is_node(typed.type):
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
                    if not types.accepts(it.type, f.input_types):
                        self.diags.error("E301", f"{what} expects a list of {describe(f.input_types)}, "
                                         f"but an item is {it.type}", it.span)
                        return None
            elif not types.accepts(typed.type, f.input_types) and not (f.constants is not None and typed.type in TYPES):
                # an input that also takes constants (Literal[...] | Input[...]): the params model checks those
                expected = describe(f.input_types)
                if f.constants is not None:
                    expected = f"{expected} or {type_name(f.constants)}"
                self.diags.error("E301", f"{what} expects {expected}, got {typed.type}", span)
                return None
        elif types.is_node(typed.type) and not f.deferred:
            self.diags.error("E301", f"{what} expects {type_name(f.annotation)}, got {typed.type}", span)
            return None
        elif op.inline and not f.deferred and any(True for _ in refs(typed.value)):
            # an inline value is folded into its parent's params before anything runs: it cannot wait
            # for a node's result (`adam(lr = sweep.best.lr)`)
            node = next(refs(typed.value)).node
            self.diags.error("E301", f"{what} cannot take the result of node '{node}': {op.name}(...) is a "
                             "configuration value, fixed before anything runs", span,
                             hint="declare the value as a param and rebind it: NODE(sweep.best) reruns NODE "
                             "with the search's best params")
            return None
        if f.path_kind is not None and not (typed.const and to_wire(typed.value) in f.path_keywords):
            resolved = self._path(typed, f.path_kind, what, span)
            if resolved is None:
                return None
            typed = Typed(typed.type, resolved, typed.span)
        tree = None
        if tensorwise and f.input_types is not None:
            tree = [self._tree_of(i) for i in typed.items] if f.is_list and typed.items is not None else self._tree_of(typed)
        return typed, spans, tree

    def _labelled(self, fname: str, arg: ast.ListExpr, owner: str, spans: dict[str, Span]) -> Typed | None:
        """A list written for a Labelled field: the record {item's canonical text: item's value}, with
        the span of each item at `fname.label` so an error about a row points at its item."""
        from expc.spec.printer import format_expr  # the printer is not needed to check most programs

        out: dict[str, Any] = {}
        seen: dict[str, Span] = {}
        ok = True
        for item in arg.items:
            label = format_expr(item)
            if label in seen:
                self.diags.error("E204", f"'{label}' appears twice in the list of '{fname}' (its items name "
                                 "the rows)", item.span, notes=[("first here", seen[label])],
                                 hint=f"write a record to name the rows yourself: {fname} = {{name: value, ...}}")
                ok = False
                continue
            seen[label] = item.span
            v = self.expr(item, owner)
            if v is None:
                ok = False
                continue
            out[label] = v.value
            spans[f"{fname}.{label}"] = item.span
        return Typed("record", RecordV(fields=out), arg.span) if ok else None

    def _operand(self, a: ast.Expr, owner: str, keep_tree: bool) -> Typed | None:
        return self._lower(a, owner) if keep_tree else self.expr(a, owner)

    def _tree_of(self, t: Typed) -> Any:
        if t.tree is not None:
            return t.tree
        if self.c.registry.types.algebra(t.type) is not None:
            return Leaf(t)
        return t.value

    def _path(self, typed: Typed, kind: str, what: str, span: Span) -> dict | None:
        if typed.type != "string" or not typed.const:
            self.diags.error("E301", f"{what} expects a path string, got {typed.type}", span)
            return None
        base = Path(span.file).resolve().parent if span else Path.cwd()
        text = to_wire(typed.value)
        path = (base / text).resolve()
        exists = path.is_file() if kind == "file" else path.is_dir() if kind == "dir" else path.exists()
        if not exists:
            noun = {"file": "file", "dir": "directory"}.get(kind, "path")
            other = "a directory" if path.is_dir() else "a file"
            self.diags.error(
                "E501",
                f"'{text}' is {other}, not a {noun}" if path.exists() else f"{noun} not found: '{text}'",
                span,
                hint=f"paths are relative to the .exp file: looked for {path}",
            )
            return None
        return FileRef(path=str(path), file_kind=kind)

    def _validate(self, op: Operator, values: dict[str, Any], spans: dict[str, Span], call_span: Span) -> bool:
        """Validate constants against the params model now, so range errors are check errors."""
        sample: dict[str, Any] = {}
        unknown: set[str] = set()
        for k, v in values.items():
            if op.field(k) is not None and op.field(k).deferred:
                sample[k] = to_wire(v)  # the operator receives deferred values in their wire form
                continue
            r = self.c.resolve_defaults(v, placeholders=True)
            if _has_unknown(r):
                unknown.add(k)
                continue
            sample[k] = r
        try:
            op.params.model_validate(sample)
        except ValidationError as err:
            errors = [x for x in err.errors() if not (x.get("loc") and str(x["loc"][0]) in unknown)]
            if errors:
                self.c.report_validation(errors, spans, call_span, f"{op.name}()")
                return False
        return self._validate_ranges(op, values, sample, spans, call_span)

    def _validate_ranges(self, op, values, sample, spans, call_span) -> bool:
        """A searched param used directly as an argument: both ends of its range must be valid."""
        ok = True
        for k, v in values.items():
            if not isinstance(v, ParamRef):
                continue
            p = self.c.params.get(v.name)
            dist = self.c.distribution(p) if p is not None else None
            if dist is None:
                continue
            bounds = dist.bounds()
            if bounds:
                lo, hi = (symbolic.plain_number(b) for b in bounds)
                what = f"the search range of '{p.name}' [{lo}, {hi}] includes"
            else:
                what = f"the options of '{p.name}' include"
            for end in dist.ends():
                try:
                    op.params.model_validate({**sample, k: end})
                except ValidationError as err:
                    bad = [x for x in err.errors() if x.get("loc") and str(x["loc"][0]) == k]
                    if bad:
                        self.diags.error(
                            "E401",
                            f"{what} invalid values for '{k}' of {op.name}(): {bad[0]['msg']}",
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
            if self.c.registry.types.is_node(v.type):
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
                spans["source"] = e.args[0].span
        if not ok:
            return None
        nid = node_id or self.c.fresh_id(owner, name)
        self.c.add_node(
            BindNode(id=nid, kind=kind if node_id else None, type=target.type, target=name, bindings=bindings,
                     source=frm, span=e.span, arg_spans=spans)
        )
        return Typed(target.type, Ref(node=nid), e.span)


def _list(items: list[Typed]) -> ListV:
    # an operand of pending algebra has no value yet (its tree stands for it)
    return ListV(items=tuple(i.value if i.value is not None else Const(value=None) for i in items))


def _has_unknown(v: Any) -> bool:
    from expc.interpreter.checker import _UNKNOWN

    if v is _UNKNOWN:
        return True
    if isinstance(v, dict):
        return any(_has_unknown(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_unknown(x) for x in v)
    return False


