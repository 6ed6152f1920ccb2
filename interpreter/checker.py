"""Meaning: names, kinds, types and params. Syntax tree (all files) -> typed IR (expc.spec.ir).

Every declaration is lowered on demand (forward references are fine; declaration order never
matters) with a visiting stack that turns a dependency cycle into a diagnostic that shows it.
Expressions are lowered by expc.interpreter.lowering; this module handles statements.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from expc.interpreter.loader import Loaded
from expc.interpreter.lowering import ExprLowerer, Typed
from expc.interpreter.prechecks import run_prechecks
from expc.interpreter import symbolic
from expc.runtime.registry import Registry
from expc.spec import ast
from expc.spec.diagnostics import Collector, Span, did_you_mean, validation_diagnostics
from expc.spec.ir import Arith, FileRef, Inline, Node, ParamDecl, ParamRef, Program, Ref, Settings, Wire, refs, to_wire
from expc.spec.types import KINDS, STATEMENT_KEYWORDS, describe


class Checker:
    def __init__(self, loaded: Loaded, registry: Registry):
        self.loaded = loaded
        self.registry = registry
        self.diags = Collector()
        self.decls: dict[str, ast.Decl] = {}
        self.param_stmts: dict[str, ast.Param] = {}
        self.params: dict[str, ParamDecl] = {}
        self.failed_params: set[str] = set()
        self.nodes: dict[str, Node] = {}
        self.values: dict[str, Typed | None] = {}  # decl name -> lowered value (None: failed)
        self.visiting: list[str] = []
        self.settings = Settings()
        self.settings_spans: dict[str, Span] = {}
        self.lower = ExprLowerer(self)

    # -- entry -------------------------------------------------------------------------------------

    def run(self) -> Program:
        experiments: list[ast.Experiment] = []
        for module in self.loaded.modules:
            for stmt in module.stmts:
                if isinstance(stmt, ast.Experiment):
                    experiments.append(stmt)
                elif isinstance(stmt, (ast.Param, ast.Decl)):
                    self._declare(stmt)
        self._settings(experiments)
        for name in self.param_stmts:
            self.param(name)
        for name in self.decls:
            self.decl_value(name)
        self._check_param_defaults()
        run_prechecks(self.nodes, self.registry, self.diags)
        main_decls = [n for n in self.decls if n in self.nodes]
        self.diags.raise_if_errors()
        self.warnings = [d for d in self.diags.items if d.severity == "warning"]
        return Program(
            file=self.loaded.main,
            files=[m.file for m in self.loaded.modules],
            settings=self.settings,
            settings_spans=self.settings_spans,
            params=self.params,
            nodes=self.nodes,
            decls=main_decls,
        )

    def _declare(self, stmt: ast.Param | ast.Decl) -> None:
        name = stmt.name
        prev = self.decls.get(name) or self.param_stmts.get(name)
        if prev is not None:
            self.diags.error(
                "E204",
                f"'{name}' is declared twice",
                stmt.name_span,
                notes=[("first declared here", prev.name_span)],
                hint="give one of them another name",
            )
            return
        if isinstance(stmt, ast.Param):
            self.param_stmts[name] = stmt
            return
        if stmt.kind not in KINDS:
            hint = did_you_mean(stmt.kind, STATEMENT_KEYWORDS)
            self.diags.error(
                "E202",
                f"unknown statement keyword '{stmt.kind}'",
                stmt.kind_span,
                hint=hint or f"statements start with one of: {', '.join(STATEMENT_KEYWORDS)}",
            )
            return
        self.decls[name] = stmt

    # -- experiment settings -----------------------------------------------------------------------

    def _settings(self, experiments: list[ast.Experiment]) -> None:
        if not experiments:
            return
        exp = experiments[-1]  # the main file's, when several files declare one (imports come first)
        values: dict[str, Any] = {"name": exp.name}
        spans: dict[str, Span] = {"name": exp.name_span}
        fields = Settings.model_fields
        for f in exp.fields:
            if f.name not in fields or f.name == "name":
                self.diags.error(
                    "E402",
                    f"unknown experiment setting '{f.name}'",
                    f.name_span,
                    hint=did_you_mean(f.name, [k for k in fields if k != "name"])
                    or "settings: " + ", ".join(k for k in fields if k != "name"),
                )
                continue
            typed = self.lower.expr(f.value, owner="experiment")
            if typed is None:
                continue
            if not typed.const:
                self.diags.error("E301", f"experiment setting '{f.name}' must be a constant", f.value.span)
                continue
            values[f.name] = to_wire(typed.value)
            spans[f.name] = f.value.span
        try:
            self.settings = Settings.model_validate(values)
        except ValidationError as e:
            self.report_validation(e.errors(), spans, exp.span, "experiment")
        self.settings_spans = spans

    # -- params ------------------------------------------------------------------------------------

    def param(self, name: str) -> ParamDecl | None:
        if name in self.params:
            return self.params[name]
        stmt = self.param_stmts.get(name)
        if stmt is None or name in self.failed_params:  # reported once, not at every use
            return None
        if name in self.visiting:
            self._cycle(name, stmt.name_span)
            return None
        self.visiting.append(name)
        try:
            typed = self.lower.expr(stmt.expr, owner=name)
        finally:
            self.visiting.pop()
        if typed is None:
            self.failed_params.add(name)
            return None
        if stmt.searched:
            dist = self.registry.distribution(to_wire(typed.value)) if isinstance(typed.value, Inline) else None
            if dist is None:
                self.diags.error(
                    "E301",
                    f"'param {name} ~' needs a distribution, got {typed.type}",
                    stmt.expr.span,
                    hint="uniform(lo, hi), loguniform(lo, hi), int(lo, hi) or choice(a, b, ...)",
                )
                self.failed_params.add(name)
                return None
            # the default as written (so keys do not change with the params model's coercions), else
            # the distribution's own (an architecture space's default genome)
            default = to_wire(typed.value.args.get("default"))
            decl = ParamDecl(name=name, dist=typed.value, type=dist.value_type(), span=stmt.name_span,
                             default=default if default is not None else dist.default_value())
        else:
            if self.registry.types.is_node(typed.type) or any(True for _ in refs(typed.value)):
                self.diags.error(
                    "E301",
                    f"param '{name}' must be a constant (number, string, bool, list or record), got {typed.type}",
                    stmt.expr.span,
                    hint=f"declare it with its kind instead, e.g. 'model {name} = ...'",
                )
                self.failed_params.add(name)
                return None
            decl = ParamDecl(name=name, value=typed.value, type=typed.type, span=stmt.name_span)
        self.params[name] = decl
        return decl

    def param_default(self, name: str) -> tuple[bool, Any]:
        """(known, value) of a param outside any search: its value, or its distribution's default."""
        p = self.params.get(name)
        if p is None:
            return False, None
        if p.dist is not None:
            return (p.default is not None), p.default
        return True, self.resolve_defaults(p.value)

    def distribution(self, p: ParamDecl):
        """The validated distribution of a searched param (None for a plain param)."""
        return self.registry.distribution(to_wire(p.dist)) if p.dist is not None else None

    def resolve_defaults(self, value: Any, placeholders: bool = False) -> Any:
        """A value as JSON with params at their defaults and arithmetic done; what is not known at
        check time becomes _UNKNOWN. With `placeholders`, node results read "<id>" and files their
        path (what a params model sees of them at check time)."""

        def fn(v):
            if isinstance(v, ParamRef):
                known, d = self.param_default(v.name)
                for m in v.path:
                    d = d.get(m, _UNKNOWN) if isinstance(d, dict) else _UNKNOWN
                return Wire(d if known else _UNKNOWN)
            if isinstance(v, Arith):
                args = [self.resolve_defaults(a, placeholders) for a in v.args]
                if any(a is _UNKNOWN for a in args):
                    return Wire(_UNKNOWN)
                try:
                    return Wire(symbolic.arith(v.op, args))
                except (ZeroDivisionError, TypeError):
                    return Wire(_UNKNOWN)
            if placeholders and isinstance(v, Ref):
                return Wire(f"<{v.node}>")
            if placeholders and isinstance(v, FileRef):
                return Wire(v.path)
            return None

        return to_wire(value, fn)

    # -- declarations ------------------------------------------------------------------------------

    def decl_value(self, name: str) -> Typed | None:
        if name in self.values:
            return self.values[name]
        stmt = self.decls[name]
        if name in self.visiting:
            self._cycle(name, stmt.name_span)
            return None
        self.visiting.append(name)
        try:
            typed = self._lower_decl(stmt)
        finally:
            self.visiting.pop()
        self.values[name] = typed
        return typed

    def _lower_decl(self, stmt: ast.Decl) -> Typed | None:
        expr = stmt.expr
        if stmt.block and self.registry.get(stmt.kind) is None:
            self.diags.error(
                "E203",
                f"'{stmt.kind}' has no block form: no operator is named '{stmt.kind}'",
                stmt.kind_span,
                hint=f"write '{stmt.kind} {stmt.name} = OPERATOR(...)'; see `expc ops`",
            )
            return None
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            op = self.registry.get(expr.func.id)
            if op is not None and op.kinds and stmt.kind not in op.kinds and not op.inline:
                self.diags.error(
                    "E302",
                    f"operator '{op.name}' cannot be declared as '{stmt.kind}'; it belongs to "
                    + ", ".join(sorted(op.kinds)),
                    stmt.kind_span,
                    hint=f"write '{sorted(op.kinds)[0]} {stmt.name} = {op.name}(...)'",
                )
                return None
        typed = self.lower.expr(expr, owner=stmt.name, node_id=stmt.name, kind=stmt.kind)
        if typed is None:
            return None
        types = self.registry.types
        if not types.kind_accepts(stmt.kind, typed.type):
            self.diags.error(
                "E302",
                f"'{stmt.kind} {stmt.name}' must be {describe(types.kind_types(stmt.kind))}, "
                f"but its value is {typed.type}",
                expr.span,
            )
            return None
        return typed

    def _cycle(self, name: str, span: Span) -> None:
        start = self.visiting.index(name)
        cycle = self.visiting[start:] + [name]
        notes = []
        for n in cycle[1:-1]:
            s = self.decls.get(n) or self.param_stmts.get(n)
            if s is not None:
                notes.append((f"'{n}' is declared here", s.name_span))
        self.diags.error("E205", "dependency cycle: " + " -> ".join(cycle), span, notes=notes,
                         hint="a declaration cannot depend on itself")

    def _check_param_defaults(self) -> None:
        """A node that needs a param with no default is an error unless a search binds that param."""
        from expc.interpreter.graph import objective_params, params_used

        searched: set[str] = set()
        evaluators: set[str] = set()
        memo: dict = {}  # params_used of every node, computed once (inputs are shared by many nodes)
        for node in self.nodes.values():
            op = self.registry.get(node.op)
            if op is not None and op.evaluates is not None:
                searched |= objective_params(node, self.nodes, self.registry, memo)
                evaluators.add(node.id)
        for nid in self.decls:
            node = self.nodes.get(nid)
            if node is None or nid in evaluators:
                continue
            for p in sorted(params_used(nid, self.nodes, self.registry, memo)):
                decl = self.params.get(p)
                if decl is not None and not decl.has_default and p not in searched:
                    self.diags.error(
                        "E311",
                        f"'{nid}' needs param '{p}', which has no default and is not searched",
                        node.span,
                        hint=f"give it one: uniform(lo, hi, default = ...), or search over '{p}'",
                        notes=[(f"'{p}' is declared here", decl.span)],
                    )

    # -- shared helpers (used by lowering) ---------------------------------------------------------

    def add_node(self, node: Node) -> None:
        self.nodes[node.id] = node

    def fresh_id(self, owner: str, op: str) -> str:
        base = f"{owner}.{op}"
        if base not in self.nodes:
            return base
        i = 2
        while f"{base}#{i}" in self.nodes:
            i += 1
        return f"{base}#{i}"

    def report_validation(self, errors: list[dict], spans: dict[str, Span], fallback: Span, what: str) -> None:
        """Pydantic errors (ValidationError.errors()) as diagnostics at the spans of their fields."""
        self.diags.extend(validation_diagnostics(errors, spans, fallback, what))


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


_UNKNOWN = _Unknown()


def check(loaded: Loaded, registry: Registry) -> tuple[Program, list]:
    """The typed program and the warnings found (errors are raised as CompileError)."""
    checker = Checker(loaded, registry)
    program = checker.run()
    return program, checker.warnings
