"""A small, real Context for calling data/train/eval operators directly in tests (used by
tests/test_data_*.py and tests/test_train_*.py)."""

from __future__ import annotations

from pathlib import Path

from expc.runtime.api import Cancelled


class OpContext:
    def __init__(self, root: Path, node: str = "node", cancel_at: int | None = None):
        self.node = node
        self.key = "0" * 16
        self.root = Path(root)
        self.out_dir = self.root / "out"
        self.work_dir = self.root / "work"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.device = "cpu"
        self.dtype = "float32"
        self.seed = 0
        self.workers = 1
        self.backend = "local"
        self.address = None
        self.bindings = {}
        self.logs: list[tuple[str, float, int | None]] = []
        self.warnings: list[tuple[str, str | None]] = []
        self.progressed = 0
        self.cancel_checks = 0
        self.cancel_at = cancel_at  # raise Cancelled at this many check_cancelled() calls

    def log(self, name, value, step=None):
        self.logs.append((name, float(value), step))

    def progress(self, total, description, unit="step"):
        def advance(n):
            self.progressed += n

        return advance

    def check_cancelled(self):
        self.cancel_checks += 1
        if self.cancel_at is not None and self.cancel_checks >= self.cancel_at:
            raise Cancelled()

    def warn(self, message, field=None):
        self.warnings.append((message, field))

    def operator(self, name):
        # the registry of the shipped operators (a real run gives the program's own)
        from expc.runtime.registry import load_registry

        return load_registry().get(name)


def run(operator, ctx, **params):
    return operator.fn(operator.params(**params), ctx)
