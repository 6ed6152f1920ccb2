"""A minimal in-process `Context` (expc.runtime.api) for running POET outside the interpreter: tests,
benchmarks and scripts. Metrics are kept in memory; `cancel_at` raises Cancelled at the check after
that many iterations (to simulate an interrupted run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from expc.runtime.api import Cancelled


@dataclass
class LocalContext:
    out_dir: Path
    work_dir: Path
    seed: int = 0
    workers: int = 1
    backend: str = "local"
    address: str | None = None
    node: str = "poet"
    key: str = "local"
    device: str = "cpu"
    dtype: str = "float32"
    cancel_at: int | None = None
    metrics: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    _checks: int = 0

    def log(self, name: str, value: float, step: int | None = None) -> None:
        self.metrics.setdefault(name, []).append((step, value))

    def progress(self, total: int, description: str):
        return lambda n=1: None

    def check_cancelled(self) -> None:
        self._checks += 1
        if self.cancel_at is not None and self._checks >= self.cancel_at:
            raise Cancelled(f"cancelled after {self._checks} checks")

    def warn(self, message: str, field: str | None = None) -> None:
        self.warnings.append((message, field))
