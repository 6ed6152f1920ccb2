"""What an earlier `expc run` left in the store for a node, found without running anything: the node
is planned (its key computed: files hashed, nothing evaluated), and its key looked up in the store
and in the run registry, both only read."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from expc.interpreter.planner import FileHasher, PlanError, plan
from expc.interpreter.results import summarize
from expc.interpreter.store import Store, StoreError
from expc.runtime.registry import Registry
from expc.spec.ir import Program

log = logging.getLogger("expc.lsp")

STORE_NAME = ".expc"  # expc run's default store (expc.interpreter.session.DEFAULT_STORE)


@dataclass(frozen=True)
class Cached:
    key: str
    summary: str
    runs: list[tuple[int, str, float | None]]  # (run id, ran|cached, seconds) of its executions


def find_store(file: Path, roots: list[Path], configured: str | None = None) -> Path | None:
    """The store a run of `file` used: the configured one, else the nearest `.expc` with results in
    the file's folder or above it (up to the workspace roots), else the working directory's."""
    if configured:
        p = Path(configured).expanduser()
        return p.resolve() if (p / "objects").is_dir() else None
    candidates = []
    for d in file.parents:
        candidates.append(d / STORE_NAME)
        if d in roots:
            break
    candidates.append(Path.cwd() / STORE_NAME)
    return next((c.resolve() for c in candidates if (c / "objects").is_dir()), None)


class ResultReader:
    """Plans nodes of a checked program and reads their results from a store, caching keys per program."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.hasher = FileHasher()  # content hashes memoized by file identity and mtime
        self._keys: tuple[Program, dict[str, str | None]] | None = None  # per program

    def key(self, program: Program, node_id: str) -> str | None:
        """The node's key, or None when it cannot be known before running (it waits for a search's
        result: `plan` lists it as pending) or does not plan."""
        if self._keys is None or self._keys[0] is not program:
            self._keys = (program, {})
        keys = self._keys[1]
        if node_id not in keys:
            try:
                planned = plan(program, self.registry, targets=[node_id], hasher=self.hasher)
                keys[node_id] = next((pn.key for pn in planned if pn.display == node_id), None)
            except PlanError:
                keys[node_id] = None
            except Exception:  # planning is a convenience here: never let it break a hover
                log.exception("planning %s", node_id)
                keys[node_id] = None
        return keys[node_id]

    def cached(self, program: Program, node_id: str, store: Path) -> Cached | None:
        key = self.key(program, node_id)
        if key is None:
            return None
        s = Store(store, self.registry.types.artifact_classes())  # an existing store: it makes nothing
        try:
            if not s.has(key):
                return None
            value = s.load(key)
        except (OSError, StoreError):
            return None
        node = program.nodes[node_id]
        try:
            summary = summarize(self.registry.types, node.type, value)
        except Exception:
            summary = "(no summary)"
        return Cached(key, summary, _executions(store, key))


def _executions(store: Path, key: str) -> list[tuple[int, str, float | None]]:
    """(run, status, seconds) of the key's executions, from the run registry opened read-only."""
    db = store / "runs.sqlite"
    if not db.is_file():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            rows = con.execute("SELECT run_id, status, seconds FROM node_runs WHERE key=? ORDER BY id",
                               (key,)).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []
    return [(int(r), str(s), sec) for r, s, sec in rows]
