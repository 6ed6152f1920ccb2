"""The one orchestrating function every command uses: path -> checked Program (or diagnostics)."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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
    bindings: dict[str, Any] = field(default_factory=dict)  # params bound by command-line overrides


def compile(path: str | Path, registry: Registry | None = None, sources: SourceCache | None = None,
            text: str | None = None, overrides: list[str] | None = None,
            parse: Callable[[str, str], Any] | None = None) -> Compiled:
    """Parse `path` and its imports, resolve names, check types and params: raise CompileError with
    every diagnostic found, or return the typed IR. With `overrides` (KEY=VALUE), the file is checked
    alone first (its errors are its own), then with the overrides applied to its syntax tree
    (expc.interpreter.overrides): what they break is raised as OverrideError. `parse` replaces
    spec.parser.parse for every file (the language server's reuses unchanged statements)."""
    sources = sources or SourceCache()
    registry = registry or load_registry()
    # Parsing and checking allocate many small objects and free almost none until the end: the cyclic
    # garbage collector's passes over them are wasted work (~30% of checking a 5,000-statement file).
    collecting = gc.isenabled()
    gc.disable()
    try:
        loaded = load(path, sources, text) if parse is None else load(path, sources, text, parse)
        program, warnings = check(loaded, registry)
    finally:
        if collecting:
            gc.enable()
    bindings: dict[str, Any] = {}
    if overrides:
        from expc.interpreter.overrides import apply_overrides  # only when there are overrides (start-up)

        program, warnings, bindings = apply_overrides(loaded, program, registry, list(overrides), sources)
    return Compiled(program, sources, loaded.texts, warnings, bindings)
