"""One version of one open document, checked: the diagnostics `expc check` gives for it (its unsaved
text, its imports from disk), the syntax trees of its files, and, when it checks, the typed program.

`analyze` never raises: a file mid-edit is broken most of the time, and a bug in a pass must cost
the user a diagnostic, not the server.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from expc.interpreter.compiler import compile
from expc.interpreter.loader import display_path
from expc.interpreter.lsp.incremental import StatementParser
from expc.interpreter.lsp.symbols import Index, build
from expc.runtime.registry import Registry
from expc.spec import ast
from expc.spec.diagnostics import CompileError, Diagnostic, SourceCache
from expc.spec.ir import Program
from expc.spec.printer import format_expr


@dataclass
class Analysis:
    uri: str
    path: Path  # absolute
    file: str  # the file's name in spans (expc.interpreter.loader.display_path)
    version: int | None
    text: str
    module: ast.Module  # the statements of the text that parse
    broken: list[tuple[int, str]]  # (line, text) of the statements that do not
    modules: list[ast.Module]  # its imports (as far as they parse), then itself
    diagnostics: list[Diagnostic]
    sources: SourceCache
    registry: Registry
    program: Program | None = None  # when it checks
    seconds: float = 0.0  # how long the check took
    previous: "Analysis | None" = field(default=None, repr=False)  # the last one that checked
    trace: str = ""  # the traceback of an internal error, for the server's log

    @cached_property
    def index(self) -> Index:
        return build(self.modules, self.registry)

    def type_of(self, name: str) -> str | None:
        """The type of a declared name: the checker's, or else the one it had when the file last
        checked (if its declaration is unchanged), or else what its expression says syntactically."""
        cache = self.__dict__.setdefault("_types", {})
        if name not in cache:
            cache[name] = None  # a cycle resolves to unknown
            cache[name] = self._type_of(name)
        return cache[name]

    def _type_of(self, name: str) -> str | None:
        if self.program is not None:
            if name in self.program.params:
                return self.program.params[name].type
            node = self.program.nodes.get(name)
            if node is not None:
                return node.type
        sym = self.index.symbols.get(name)
        if sym is None:
            return None
        prev = self.previous
        if prev is not None and prev.program is not None:
            old = prev.index.symbols.get(name)
            if old is not None and _same_declaration(old.stmt, sym.stmt):
                t = prev.type_of(name)
                if t is not None:
                    return t
        if isinstance(sym.stmt, ast.Param) and sym.stmt.searched:
            return self._distribution_type(sym.stmt.expr)
        return self.guess(sym.stmt.expr)

    def _distribution_type(self, e: ast.Expr) -> str:
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
            op = self.registry.get(e.func.id)
            if op is not None:
                try:
                    return op.params.model_construct().value_type()
                except Exception:
                    pass
        return "any"

    def guess(self, e: ast.Expr) -> str | None:
        """The type of an expression from its form and the operators' declared return types."""
        types = self.registry.types
        if isinstance(e, ast.Int):
            return "int"
        if isinstance(e, ast.Float):
            return "number"
        if isinstance(e, ast.Str):
            return "string"
        if isinstance(e, ast.Bool):
            return "bool"
        if isinstance(e, ast.ListExpr):
            return "list"
        if isinstance(e, ast.RecordExpr):
            return "record"
        if isinstance(e, ast.Name):
            return self.type_of(e.id)
        if isinstance(e, ast.Member):
            obj = self.guess(e.obj)
            if obj is None:
                return None
            members = types.members(obj) or {}
            return members.get(e.name) or ("any" if types.is_open(obj) else None)
        if isinstance(e, ast.Neg):
            return self.guess(e.operand)
        if isinstance(e, ast.BinOp):
            sides = [self.guess(e.left), self.guess(e.right)]
            for t in sides:
                if t is not None and types.algebra_type(t):
                    return types.algebra_type(t)
            return "number" if all(t in ("int", "number") for t in sides) else None
        if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
            op = self.registry.get(e.func.id)
            if op is None:
                return self.type_of(e.func.id)  # node(param = value) has the node's type
            return self._returns(op, e)
        return None

    def _returns(self, op, call: ast.Call) -> str:
        if "{" not in op.returns:
            return op.returns
        bound: dict[str, ast.Expr] = {k.name: k.value for k in call.kwargs}
        for f, a in zip(op.fields, call.args):
            bound.setdefault(f.name, a)

        def arg_type(name: str) -> str | None:
            arg = bound.get(name)
            return self.guess(arg) if arg is not None else None

        return self.registry.types.fill_returns(op.returns, arg_type)


def _same_declaration(a, b) -> bool:
    if type(a) is not type(b) or getattr(a, "kind", None) != getattr(b, "kind", None):
        return False
    return format_expr(a.expr) == format_expr(b.expr)


def analyze(uri: str, path: Path, text: str, version: int | None, registry: Registry,
            parser: StatementParser, previous: Analysis | None = None) -> Analysis:
    """Check one document's text as `expc check` checks its file. Never raises."""
    start = time.perf_counter()
    path = path.resolve()
    file = display_path(path)
    sources = SourceCache()
    parsed: dict[str, ast.Module] = {}

    def parse(src: str, name: str) -> ast.Module:
        m = parser(src, name)
        parsed[name] = m
        return m

    module, broken, modules = ast.Module(file, (), ()), [], []
    program, trace = None, ""
    try:
        module, broken = parser.tolerant(text, file)
        compiled = compile(path, registry, sources, text=text, parse=parse)
        program, diagnostics = compiled.program, list(compiled.warnings)
    except CompileError as e:
        diagnostics = list(e.diagnostics)
    except Exception as e:  # a bug in a pass: say so where the user looks, keep serving
        trace = traceback.format_exc()
        diagnostics = [Diagnostic("internal", f"internal error in expc: {type(e).__name__}: {e}", None,
                                  hint="this is a bug in expc; the language server's log has the traceback")]
    try:
        modules = _imports(module, path, parsed, parser, sources)
    except Exception:  # imports' statements serve navigation only: without them, it stays in the file
        pass
    modules.append(module)
    # a file that does not check keeps the last one that did, for the types of its unchanged names
    last_good = None
    if program is None and previous is not None:
        last_good = previous if previous.program is not None else previous.previous
    return Analysis(uri, path, file, version, text, module, broken, modules, diagnostics, sources, registry,
                    program, time.perf_counter() - start, last_good, trace)


def _imports(main: ast.Module, path: Path, parsed: dict[str, ast.Module], parser: StatementParser,
             sources: SourceCache) -> list[ast.Module]:
    """The modules the main file imports, transitively, imports first (as the loader orders them):
    those the check parsed, and, when it stopped early, the statements of the others that parse."""
    out: list[ast.Module] = []
    done: set[Path] = {path}

    def visit(m: ast.Module, base: Path) -> None:
        for stmt in m.stmts:
            if not isinstance(stmt, ast.Import):
                continue
            target = (base.parent / stmt.path).resolve()
            if target in done:
                continue
            done.add(target)
            name = display_path(target)
            sub = parsed.get(name)
            if sub is None:
                try:
                    text = target.read_text(encoding="utf-8-sig")
                except (OSError, UnicodeDecodeError):
                    continue
                sources.add(name, text)
                sub = parser.tolerant(text, name)[0]
            visit(sub, target)
            out.append(sub)

    visit(main, path)
    return out
