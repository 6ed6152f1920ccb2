"""The `tensors` value: labelled feature arrays (declared as the `tensors` value type in
runtime/ops/tensors.py, which is how the store decodes it). Cheap to import: pydantic only; numpy and
safetensors are imported when arrays are read or written.

The interface operators that consume it (nets, `fit`, attacks) use:

    class TensorData(Artifact):          # tag "tensors"
        n: int                           # number of examples
        shape: list[int]                 # per-example feature shape: [1, 8, 8] (images) or [4] (tabular)
        classes: int                     # labels are 0..classes-1 (some may have no example)
        source: str                      # where it came from: "split(digits(), test=0.1, seed=0).train"
        lo: float                        # the feature range [lo, hi]: the data set's nominal range
        hi: float                        #   (digits: [0, 16], or [0, 1] normalized), kept by subsets
        file: str                        # the safetensors file in `path` ("tensors.safetensors")

        def load(self) -> tuple[np.ndarray, np.ndarray]:
            '''X float32 of shape [n, *shape], y int64 of shape [n].'''

        @classmethod
        def write(cls, out_dir, X, y, source, classes=None, *, lo=None, hi=None,
                  file="tensors.safetensors") -> TensorData:
            '''Store X (cast to float32) and y (to int64) in out_dir/file. `classes` defaults to
            max(y) + 1; `lo`/`hi` to min(X)/max(X). ValueError on empty, misshapen, non-finite or
            out-of-range data.'''

Arrays are stored as safetensors (tensors "x" and "y"): nothing is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from expc.runtime.api import Artifact

if TYPE_CHECKING:
    import numpy as np


class TensorData(Artifact):
    """Feature arrays with integer labels, stored as one safetensors file inside its directory."""

    tag = "tensors"
    n: int = 0
    shape: list[int] = []
    classes: int = 0
    source: str = ""
    lo: float = 0.0
    hi: float = 0.0
    file: str = "tensors.safetensors"

    @property
    def file_path(self) -> Path:
        return self.path / self.file

    def load(self) -> tuple["np.ndarray", "np.ndarray"]:
        """(X, y): X float32 of shape [n, *shape], y int64 of shape [n]."""
        from safetensors.numpy import load_file

        arrays = load_file(str(self.file_path))
        return arrays["x"], arrays["y"]

    @classmethod
    def write(cls, out_dir: Path, X: Any, y: Any, source: str, classes: int | None = None, *,
              lo: float | None = None, hi: float | None = None, file: str = "tensors.safetensors") -> "TensorData":
        """Store X (cast to float32, shape [n, *shape]) and y (integer labels, shape [n]) as
        out_dir/file. `classes` defaults to max(y) + 1 and `lo`/`hi` to the smallest and largest
        feature; a subset of a data set passes its parent's, so it keeps the same label space and
        feature range."""
        import numpy as np
        from safetensors.numpy import save_file

        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        y_in = np.asarray(y)
        if X.ndim < 2:
            raise ValueError(f"X must have shape [n, *shape], got shape {list(X.shape)}")
        if len(X) == 0:
            raise ValueError("no examples: a tensors value holds at least one")
        if y_in.shape != (len(X),):
            raise ValueError(f"y must have shape [{len(X)}] (one label per example), got {list(y_in.shape)}")
        if y_in.dtype.kind not in "iub" and not (y_in.dtype.kind == "f" and np.all(y_in == np.round(y_in))):
            raise ValueError(f"labels must be integers, got dtype {y_in.dtype}")
        y = np.ascontiguousarray(y_in.astype(np.int64))
        if not np.all(np.isfinite(X)):
            raise ValueError("X holds NaN or infinite values")
        if y.min() < 0:
            raise ValueError(f"labels must be >= 0, got {int(y.min())}")
        k = int(y.max()) + 1 if classes is None else int(classes)
        if y.max() >= k:
            raise ValueError(f"label {int(y.max())} is not below classes = {k}")
        lo = float(X.min()) if lo is None else float(lo)
        hi = float(X.max()) if hi is None else float(hi)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        save_file({"x": X, "y": y}, str(out_dir / file))
        return cls(path=out_dir, n=len(X), shape=list(X.shape[1:]), classes=k, source=source, lo=lo, hi=hi,
                   file=file)
