"""What each piece of a program's text is: the declarations of its files and every occurrence of a
name, an operator, an argument name, a member or an import path, by position.

Built from syntax trees only, so it works on a file that does not check (and, with the statements
that parse, on one that does not parse). Names resolve as the checker resolves them: one namespace
for the main file and its imports; a called name is an operator first, then a declaration; a bare
name is a param or declaration first.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Union

from expc.runtime.registry import Registry
from expc.spec import ast
from expc.spec.diagnostics import Span
from expc.interpreter.lsp.positions import contains

Statement = Union[ast.Experiment, ast.Import, ast.Param, ast.Decl]


@dataclass(frozen=True)
class Symbol:
    """A declared name: a param (kind "param") or a declaration (kind "data", "model", ...)."""

    name: str
    kind: str
    stmt: Statement
    file: str  # as spans name it

    @property
    def name_span(self) -> Span:
        return self.stmt.name_span


@dataclass(frozen=True)
class Occurrence:
    """One meaningful piece of text. `what`:
    decl      the name a statement declares                         name
    experiment  the experiment's name                                 name
    ref       a use of a declared name (also `node(param = ...)`'s param)  name
    kind      the keyword of `KIND NAME = ...`                        name = the kind
    op        an operator's name in a call, or a block's keyword     name = the operator; node = the Call
    field     an argument's name in a call or a block                name; op; node = the Call
    setting   a field of the experiment block                        name
    member    `.name` after a value                                  name; node = the Member
    import    the path string of an import                           name = the path as written
    path      a string argument naming a file or directory           name = the string; node = the Str
    """

    span: Span
    what: str
    name: str
    stmt: Statement
    op: str | None = None
    node: object | None = None


@dataclass
class Index:
    symbols: dict[str, Symbol] = field(default_factory=dict)
    occurrences: dict[str, list[Occurrence]] = field(default_factory=dict)  # by file, in text order
    _starts: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def at(self, file: str, line: int, col: int) -> Occurrence | None:
        """The innermost occurrence at a position (or ending just before it)."""
        occs = self.occurrences.get(file, [])
        starts = self._starts.get(file)
        if starts is None:
            starts = self._starts[file] = [(o.span.line, o.span.col) for o in occs]
        hi = bisect.bisect_right(starts, (line, col))
        best = None
        # occurrences are short (a name, a string): look back over the few that start on this line
        for o in reversed(occs[max(0, hi - 64):hi]):
            if contains(o.span, line, col):
                if best is None or _size(o.span) < _size(best.span):
                    best = o
        return best

    def uses(self, name: str) -> list[Occurrence]:
        """The declaration of `name` and every reference to it, in every file indexed."""
        return [o for occs in self.occurrences.values() for o in occs
                if o.name == name and o.what in ("decl", "ref")]


def _size(s: Span) -> tuple[int, int]:
    return (s.end_line - s.line, s.end_col - s.col)


def build(modules: list[ast.Module], registry: Registry) -> Index:
    """The index of a program's modules (imports first, the main file last, as the loader orders them)."""
    index = Index()
    for m in modules:
        for stmt in m.stmts:
            if isinstance(stmt, (ast.Param, ast.Decl)) and stmt.name not in index.symbols:
                kind = "param" if isinstance(stmt, ast.Param) else stmt.kind
                index.symbols[stmt.name] = Symbol(stmt.name, kind, stmt, m.file)
    for m in modules:
        occs: list[Occurrence] = []
        for stmt in m.stmts:
            occs.extend(_Walker(index, registry, stmt).statement())
        occs.sort(key=lambda o: (o.span.line, o.span.col))
        index.occurrences[m.file] = occs
    return index


class _Walker:
    def __init__(self, index: Index, registry: Registry, stmt: Statement):
        self.index = index
        self.registry = registry
        self.stmt = stmt

    def occ(self, span: Span, what: str, name: str, op: str | None = None, node: object | None = None) -> Occurrence:
        return Occurrence(span, what, name, self.stmt, op, node)

    def statement(self) -> Iterator[Occurrence]:
        s = self.stmt
        if isinstance(s, ast.Import):
            yield self.occ(s.path_span, "import", s.path)
        elif isinstance(s, ast.Experiment):
            yield self.occ(s.name_span, "experiment", s.name)
            for f in s.fields:
                yield self.occ(f.name_span, "setting", f.name)
                yield from self.expr(f.value)
        elif isinstance(s, ast.Param):
            yield self.occ(s.name_span, "decl", s.name)
            yield from self.expr(s.expr)
        elif isinstance(s, ast.Decl):
            if not s.block:
                yield self.occ(s.kind_span, "kind", s.kind)
            yield self.occ(s.name_span, "decl", s.name)
            yield from self.expr(s.expr)

    def expr(self, e: ast.Expr) -> Iterator[Occurrence]:
        if isinstance(e, ast.Name):
            if e.id in self.index.symbols:
                yield self.occ(e.span, "ref", e.id)
            elif e.id in self.registry:
                yield self.occ(e.span, "op", e.id)
        elif isinstance(e, ast.Member):
            yield from self.expr(e.obj)
            yield self.occ(e.name_span, "member", e.name, node=e)
        elif isinstance(e, ast.Call):
            yield from self.call(e)
        elif isinstance(e, ast.BinOp):
            yield from self.expr(e.left)
            yield from self.expr(e.right)
        elif isinstance(e, ast.Neg):
            yield from self.expr(e.operand)
        elif isinstance(e, ast.ListExpr):
            for i in e.items:
                yield from self.expr(i)
        elif isinstance(e, ast.RecordExpr):
            for f in e.fields:
                yield from self.expr(f.value)

    def call(self, e: ast.Call) -> Iterator[Occurrence]:
        if not isinstance(e.func, ast.Name):
            yield from self.expr(e.func)
            for a in (*e.args, *(k.value for k in e.kwargs)):
                yield from self.expr(a)
            return
        name = e.func.id
        op = self.registry.get(name)
        if op is None and name in self.index.symbols:  # node(param = value): a re-instantiation
            yield self.occ(e.func.span, "ref", name)
            for a in e.args:
                yield from self.expr(a)
            for k in e.kwargs:
                if self.index.symbols.get(k.name) is not None and self.index.symbols[k.name].kind == "param":
                    yield self.occ(k.name_span, "ref", k.name)
                yield from self.expr(k.value)
            return
        yield self.occ(e.func.span, "op", name, op=name, node=e)
        fields = op.fields if op is not None else ()
        for i, a in enumerate(e.args):
            f = fields[min(i, len(fields) - 1)] if fields else None
            if f is not None and (i < len(fields) or f.variadic):
                yield from self.argument(f, a)
            else:
                yield from self.expr(a)
        for k in e.kwargs:
            yield self.occ(k.name_span, "field", k.name, op=name, node=e)
            f = op.field(k.name) if op is not None else None
            yield from self.argument(f, k.value) if f is not None else self.expr(k.value)

    def argument(self, f, value: ast.Expr) -> Iterator[Occurrence]:
        if f.path_kind is not None and isinstance(value, ast.Str) and value.value not in f.path_keywords:
            yield self.occ(value.span, "path", value.value, node=value)
        else:
            yield from self.expr(value)


def resolve_file(span_file: str) -> Path:
    """The absolute path of a file as spans name it (relative to the working directory, see
    expc.interpreter.loader.display_path)."""
    return Path(span_file).resolve()
