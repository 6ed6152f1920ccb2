"""Which module of expc.runtime.ops declares each operator and value type, so that the shipped registry
imports a family's module only when a program uses one of its operators or types.

Declaring an operator is cheap but not free (a pydantic params model per operator: 2-14 ms a family),
and `expc check` of a DEM program has no use for the attack or POET families. `ops/_index.json` maps
names to modules; it is trusted only while the digest of the ops modules' sources matches the one it
records (a module added or edited without regenerating it makes `load_registry` import every module,
as it did before). Regenerate with `python -m expc.runtime.ops_index`; tests/test_ops_index.py checks
that it is fresh. Nothing here imports the ops modules until asked.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Iterator

OPS_DIR = Path(__file__).resolve().parent / "ops"
INDEX = OPS_DIR / "_index.json"
PACKAGE = "expc.runtime.ops"


def sources_digest() -> str:
    """A digest of every ops module's source (names and contents), what the index was built from."""
    d = hashlib.blake2b(digest_size=16)
    for f in sorted(OPS_DIR.glob("*.py")):
        if not f.name.startswith("_"):
            d.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return d.hexdigest()


def read_index() -> dict | None:
    """The index, or None when it is missing or does not describe the sources as they are."""
    try:
        index = json.loads(INDEX.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return index if index.get("digest") == sources_digest() else None


def build_index(registry) -> dict:
    """The index of a registry collected from the builtin modules."""
    return {
        "digest": sources_digest(),
        "ops": {name: registry.ops[name].module for name in sorted(registry.ops)},
        "types": {name: t.module for name, t in sorted(registry.types.declared.items())},
    }


def module_named(name: str):
    __import__(name)  # (not importlib: so that `python -X importtime` shows what a family costs)
    return sys.modules[name]


class LazyDeclarations(Mapping):
    """name -> declaration, importing the declaring module at the first lookup of one of its names."""

    def __init__(self, where: dict[str, str], find: Callable[[Any, str], Any]):
        self._where = where
        self._find = find
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        hit = self._loaded.get(name)
        if hit is None:
            module = self._where[name]  # KeyError: not declared
            hit = self._loaded[name] = self._find(module_named(module), name)
        return hit

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


if __name__ == "__main__":
    from expc.runtime.registry import builtin_modules, collect

    INDEX.write_text(json.dumps(build_index(collect(builtin_modules())), indent=1, sort_keys=True) + "\n",
                     encoding="utf-8")
    print(f"wrote {INDEX}")
