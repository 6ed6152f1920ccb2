"""The `stream` value: a sequence of labelled tasks, each split into train and test examples. Cheap to
import (pydantic only; numpy and safetensors are imported when tasks are read or written).

    class Stream(Artifact):              # tag "stream"
        shape: list[int]                 # the per-example feature shape, the same for every task
        classes: list[int]               # classes of each task (labels 0..k-1 within the task)
        sources: list[str]               # where each task came from
        n_train, n_test: list[int]       # examples of each task
        lo, hi: float                    # the feature range over every task

        def task(self, i) -> tuple[X_train, y_train, X_test, y_test]   # numpy arrays

Each task is one safetensors file, `task_I.safetensors`, with the tensors x_train, y_train, x_test and
y_test: nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from expc.runtime.api import Artifact

if TYPE_CHECKING:
    import numpy as np


class Stream(Artifact):
    tag = "stream"
    shape: list[int] = []
    classes: list[int] = []
    sources: list[str] = []
    n_train: list[int] = []
    n_test: list[int] = []
    lo: float = 0.0
    hi: float = 1.0

    @property
    def n_tasks(self) -> int:
        return len(self.classes)

    def task(self, i: int) -> tuple["np.ndarray", "np.ndarray", "np.ndarray", "np.ndarray"]:
        """(X_train, y_train, X_test, y_test) of task i: X float32 [n, *shape], y int64 [n]."""
        from safetensors.numpy import load_file

        a = load_file(str(self.path / f"task_{i}.safetensors"))
        return a["x_train"], a["y_train"], a["x_test"], a["y_test"]


def stratified_split(y: "np.ndarray", test: float, rng) -> tuple["np.ndarray", "np.ndarray"]:
    """(train indices, test indices): each class held out in proportion to its size (at least one test
    and one training example for a class of two or more)."""
    import numpy as np

    train, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(test * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        held.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def write_stream(out_dir: Path, tasks: list, test: float, seed: int) -> Stream:
    """Split each `tensors` value into train and test (seeded by `seed` and the task's index) and store
    them; `tasks` have one feature shape (the caller checks)."""
    import numpy as np
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_train, n_test = [], []
    for i, d in enumerate(tasks):
        X, y = d.load()
        tr, te = stratified_split(y, test, np.random.default_rng([seed, i]))
        save_file({"x_train": np.ascontiguousarray(X[tr]), "y_train": np.ascontiguousarray(y[tr]),
                   "x_test": np.ascontiguousarray(X[te]), "y_test": np.ascontiguousarray(y[te])},
                  str(out_dir / f"task_{i}.safetensors"))
        n_train.append(len(tr))
        n_test.append(len(te))
    return Stream(path=out_dir, shape=list(tasks[0].shape), classes=[int(d.classes) for d in tasks],
                  sources=[d.source for d in tasks], n_train=n_train, n_test=n_test,
                  lo=min(float(d.lo) for d in tasks), hi=max(float(d.hi) for d in tasks))
