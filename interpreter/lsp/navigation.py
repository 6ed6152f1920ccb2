"""Go to definition, find references and the outline (document symbols)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from lsprotocol import types as lsp
from pygls.uris import from_fs_path

from expc.interpreter.lsp.analysis import Analysis
from expc.interpreter.lsp.symbols import Occurrence, resolve_file
from expc.spec import ast
from expc.spec.diagnostics import Span
from expc.spec.printer import format_expr

# span -> LSP range, given the file the span is in (see LanguageServer.range)
RangeOf = Callable[[Span], lsp.Range]


def definition(a: Analysis, occ: Occurrence, range_of: RangeOf) -> list[lsp.Location]:
    if occ.what in ("ref", "decl"):
        sym = a.index.symbols.get(occ.name)
        if sym is None:
            return []
        return [_location(sym.name_span, range_of)]
    if occ.what in ("import", "path"):
        target = (resolve_file(occ.span.file).parent / occ.name).resolve()
        if not target.is_file():
            return []
        start = lsp.Position(line=0, character=0)
        return [lsp.Location(uri=from_fs_path(str(target)), range=lsp.Range(start=start, end=start))]
    return []


def references(a: Analysis, occ: Occurrence, include_declaration: bool, range_of: RangeOf) -> list[lsp.Location]:
    if occ.what in ("ref", "decl"):
        uses = a.index.uses(occ.name)
        return [_location(o.span, range_of) for o in uses if include_declaration or o.what != "decl"]
    if occ.what == "import":  # every import of the same file
        target = (resolve_file(occ.span.file).parent / occ.name).resolve()
        out = []
        for occs in a.index.occurrences.values():
            for o in occs:
                if o.what == "import" and (resolve_file(o.span.file).parent / o.name).resolve() == target:
                    out.append(_location(o.span, range_of))
        return out
    return []


def _location(span: Span, range_of: RangeOf) -> lsp.Location:
    return lsp.Location(uri=from_fs_path(str(resolve_file(span.file))), range=range_of(span))


_SYMBOL_KINDS = {
    "data": lsp.SymbolKind.Struct,
    "model": lsp.SymbolKind.Class,
    "train": lsp.SymbolKind.Class,
    "merge": lsp.SymbolKind.Class,
    "env": lsp.SymbolKind.Object,
    "eval": lsp.SymbolKind.Number,
    "search": lsp.SymbolKind.Event,
    "poet": lsp.SymbolKind.Event,
    "report": lsp.SymbolKind.File,
}


def document_symbols(a: Analysis, range_of: RangeOf) -> list[lsp.DocumentSymbol]:
    """The outline of the document's own statements (those that parse)."""
    out = []
    for stmt in a.module.stmts:
        if isinstance(stmt, ast.Experiment):
            children = [_symbol(f.name, "setting", lsp.SymbolKind.Property, f.span, f.name_span, range_of,
                                format_expr(f.value)) for f in stmt.fields]
            out.append(_symbol(stmt.name, "experiment", lsp.SymbolKind.Module, stmt.span, stmt.name_span, range_of,
                               None, children))
        elif isinstance(stmt, ast.Import):
            out.append(_symbol(stmt.path, "import", lsp.SymbolKind.Package, stmt.span, stmt.path_span, range_of))
        elif isinstance(stmt, ast.Param):
            t = a.type_of(stmt.name)
            detail = ("~ " if stmt.searched else "= ") + _short(format_expr(stmt.expr))
            kind = lsp.SymbolKind.TypeParameter if stmt.searched else lsp.SymbolKind.Constant
            out.append(_symbol(stmt.name, f"param: {t}" if t else "param", kind, stmt.span, stmt.name_span,
                               range_of, detail))
        elif isinstance(stmt, ast.Decl):
            t = a.type_of(stmt.name)
            children = None
            if stmt.block and isinstance(stmt.expr, ast.Call):
                children = [_symbol(k.name, "field", lsp.SymbolKind.Field, k.span, k.name_span, range_of,
                                    _short(format_expr(k.value))) for k in stmt.expr.kwargs]
            op = _op_name(stmt.expr)
            detail = f"{stmt.kind}: {t or '?'}" + (f" = {op}(...)" if op and not stmt.block else "")
            out.append(_symbol(stmt.name, detail, _SYMBOL_KINDS.get(stmt.kind, lsp.SymbolKind.Variable), stmt.span,
                               stmt.name_span, range_of, None, children))
    return out


def _symbol(name: str, detail: str | None, kind, span: Span, sel: Span, range_of: RangeOf, extra: str | None = None,
            children=None) -> lsp.DocumentSymbol:
    if extra:
        detail = f"{detail} {extra}" if detail else extra
    return lsp.DocumentSymbol(name=name, detail=detail, kind=kind, range=range_of(span),
                              selection_range=range_of(sel), children=children)


def _op_name(e: ast.Expr) -> str | None:
    return e.func.id if isinstance(e, ast.Call) and isinstance(e.func, ast.Name) else None


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def file_uri(path: Path) -> str:
    return from_fs_path(str(path))
