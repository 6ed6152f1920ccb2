"""The one orchestrating function every command uses: path -> checked Program (or diagnostics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from expc.interpreter.checker import check
from expc.interpreter.loader import load
from expc.runtime.registry import Registry, load_registry
from expc.spec.diagnostics import SourceCache
from expc.spec.ir import Program


@dataclass
class Compiled:
    program: Program
    sources: SourceCache
    texts: dict[str, str]  # file -> source text (for fmt and watch)
    warnings: list = field(default_factory=list)  # Diagnostics of severity "warning"


def compile(path: str | Path, registry: Registry | None = None, sources: SourceCache | None = None,
            text: str | None = None) -> Compiled:
    """Parse `path` and its imports, resolve names, check types and params: raise CompileError with
    every diagnostic found, or return the typed IR."""
    sources = sources or SourceCache()
    loaded = load(path, sources, text)
    program, warnings = check(loaded, registry or load_registry())
    return Compiled(program, sources, loaded.texts, warnings)
