"""The content-addressed store: one directory per node key, written atomically.

    STORE/objects/ab/abcdef.../   value.json + the result's files (complete, never partial)
    STORE/tmp/<key>.<pid>.<n>/     a result being written (moved into objects/ by one rename)
    STORE/work/<key>/              persistent scratch for a key (checkpoints), removed on success
    STORE/runs.sqlite              the run registry (expc.interpreter.runs)

A directory under objects/ exists only if its value.json was written before the rename, so a run
killed at any point (kill -9) leaves only finished results there; leftovers in tmp/ are ignored and
swept. Values are JSON; artifacts are decoded from JSON by tag. Nothing is ever unpickled.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from expc.runtime.api import Artifact

_counter = itertools.count()


class StoreError(Exception):
    pass


class Store:
    def __init__(self, root: str | Path, artifacts: dict[str, type] | None = None):
        """`artifacts`: tag -> Artifact class, from the registry's value types (registry.types)."""
        self.root = Path(root).resolve()
        self.artifacts = artifacts or {}
        self.objects = self.root / "objects"
        self.tmp_root = self.root / "tmp"
        self.work_root = self.root / "work"
        for d in (self.objects, self.tmp_root, self.work_root):
            d.mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------------------------------

    def path(self, key: str) -> Path:
        return self.objects / key[:2] / key

    def has(self, key: str) -> bool:
        return (self.path(key) / "value.json").is_file()

    def new_tmp(self, key: str) -> Path:
        d = self.tmp_root / f"{key}.{os.getpid()}.{next(_counter)}"
        d.mkdir(parents=True)
        return d

    def work(self, key: str) -> Path:
        d = self.work_root / key
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- write -------------------------------------------------------------------------------------

    def commit(self, key: str, tmp: Path, value: Any) -> Any:
        """Encode value into tmp/value.json, then move tmp into place with one atomic rename.
        Returns the value as loaded from its final place."""
        encoded = encode(value, tmp)
        data = json.dumps({"key": key, "value": encoded}, allow_nan=True)
        vtmp = tmp / "value.json.part"
        with open(vtmp, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(vtmp, tmp / "value.json")
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if self.has(key):  # another worker finished the same key first: theirs is as good
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise
        work = self.work_root / key
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
        return self.load(key)

    def discard(self, tmp: Path) -> None:
        shutil.rmtree(tmp, ignore_errors=True)

    # -- read --------------------------------------------------------------------------------------

    def load(self, key: str) -> Any:
        d = self.path(key)
        try:
            data = json.loads((d / "value.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read stored result {key[:12]}: {e}") from None
        return decode(data["value"], d, self.artifacts)

    def sweep_tmp(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary directories left by killed runs (older than an hour: a live run's are young)."""
        n = 0
        now = time.time()
        for d in self.tmp_root.iterdir():
            try:
                if now - d.stat().st_mtime > older_than_s:
                    shutil.rmtree(d, ignore_errors=True)
                    n += 1
            except OSError:
                pass
        return n


def encode(value: Any, base: Path) -> Any:
    """JSON for a value; artifacts record their directory relative to the node's directory."""
    if isinstance(value, Artifact):
        try:
            rel = Path(value.path).resolve().relative_to(base.resolve())
        except ValueError:
            raise StoreError(
                f"an operator returned a {value.tag} artifact at {value.path}, outside its output directory"
            ) from None
        return {**value.to_json(), "$rel": str(rel)}
    if isinstance(value, dict):
        return {str(k): encode(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, base) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    raise StoreError(f"cannot store a value of type {type(value).__name__}; return JSON or an Artifact")


def decode(value: Any, base: Path, artifacts: dict[str, type] | None = None) -> Any:
    if isinstance(value, dict):
        if "$artifact" in value:
            body = {k: v for k, v in value.items() if k != "$rel"}
            return Artifact.from_json(body, base / value.get("$rel", "."), artifacts)
        return {k: decode(v, base, artifacts) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, base, artifacts) for v in value]
    return value
