"""Read a program's files: the main file and, transitively, its imports (cycles are errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from expc.spec import ast
from expc.spec.diagnostics import Collector, CompileError, SourceCache, Span
from expc.spec.parser import parse


@dataclass
class Loaded:
    modules: list[ast.Module]  # imports before the files that import them; the main file last
    sources: SourceCache
    main: str
    texts: dict[str, str] = field(default_factory=dict)


def display_path(path: Path) -> str:
    """Paths in diagnostics: relative to the working directory when inside it, like compilers do."""
    cwd = Path.cwd()
    path = Path(path)
    if path.is_absolute() and cwd in path.parents:
        return str(path.relative_to(cwd))
    return str(path)


def load(path: str | Path, sources: SourceCache | None = None, text: str | None = None,
         parse: Callable[[str, str], ast.Module] = parse) -> Loaded:
    """Parse the main file and its imports; raise CompileError with every problem found. `parse`
    (text, file) -> module is spec.parser.parse; the language server passes one that reuses the
    statements of unchanged text (expc.interpreter.lsp.incremental)."""
    sources = sources or SourceCache()
    diags = Collector()
    main = Path(path).resolve()
    modules: list[ast.Module] = []
    texts: dict[str, str] = {}
    done: set[Path] = set()

    def visit(file: Path, chain: list[tuple[Path, Span | None]], override: str | None = None) -> None:
        if file in done:
            return
        shown = display_path(file)
        try:
            src = override if override is not None else file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            if not chain:
                raise CompileError([_usage_diag(f"file not found: {shown}")])
            diags.error("E502", f"imported file not found: {shown}", chain[-1][1])
            return
        except UnicodeDecodeError as e:
            span = chain[-1][1] if chain else None
            diags.error("E502", f"{shown} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})", span)
            return
        except OSError as e:
            span = chain[-1][1] if chain else None
            diags.error("E502", f"cannot read {shown}: {e.strerror or e}", span)
            return
        sources.add(shown, src)
        texts[shown] = src
        try:
            module = parse(src, shown)
        except CompileError as e:
            diags.extend(e.diagnostics)
            done.add(file)
            return
        for stmt in module.stmts:
            if isinstance(stmt, ast.Import):
                target = (file.parent / stmt.path).resolve()
                cycle = [p for p, _ in chain] + [file]
                if target in cycle:
                    names = " -> ".join(display_path(p) for p in cycle[cycle.index(target):] + [target])
                    diags.error("E503", f"import cycle: {names}", stmt.path_span,
                                hint="move the shared declarations into a file both can import")
                    continue
                visit(target, chain + [(file, stmt.path_span)])
        done.add(file)
        modules.append(module)

    visit(main, [], text)
    diags.raise_if_errors()
    return Loaded(modules, sources, display_path(main), texts)


def _usage_diag(message: str):
    from expc.spec.diagnostics import Diagnostic

    return Diagnostic("E001", message, None)
