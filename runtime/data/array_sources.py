"""Readers and generators behind the `tensors` operators (runtime/ops/tensors.py): the data sets
bundled in scikit-learn's wheel, generated blobs and moons, user arrays from .npz or .csv files, and the
stratified split. Loaded only when such an operator runs (numpy here; scikit-learn when a bundled set
is read). Every random choice comes from a numpy Generator seeded by the operator's `seed`.

A problem with a user's file is an `OpError` naming the file and, for a CSV, the line: users see
`data/points.csv:7: column 'x2' holds 'n/a', not a number`, never a traceback."""

from __future__ import annotations

import csv as _csv
import io
import zipfile
from pathlib import Path

import numpy as np

from expc.runtime.api import OpError
from expc.runtime.data.arrays import TensorData
from expc.runtime.data.array_files import name_problems, npz_features, npz_names
from expc.runtime.data.sources import _read_utf8, shown

# name -> (scikit-learn loader, per-example shape or None for flat features, nominal feature range or None)
BUNDLED = {
    "digits": ("load_digits", (1, 8, 8), (0.0, 16.0)),
    "iris": ("load_iris", None, None),
    "wine": ("load_wine", None, None),
    "breast_cancer": ("load_breast_cancer", None, None),
}


def bundled(name: str, normalize: bool) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(X, y, lo, hi) of a data set shipped inside scikit-learn (read from its package data, no
    download). `normalize` scales into [0, 1]: digits' pixels by their nominal maximum 16, a tabular
    set's features each by its own min and max over the whole set."""
    import sklearn.datasets

    loader, shape, nominal = BUNDLED[name]
    bunch = getattr(sklearn.datasets, loader)()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    if nominal is not None:
        lo, hi = nominal
        if normalize:
            X, lo, hi = (X - lo) / (hi - lo), 0.0, 1.0
    elif normalize:
        mins, maxs = X.min(axis=0), X.max(axis=0)
        X = (X - mins) / np.where(maxs > mins, maxs - mins, 1.0)
        lo, hi = 0.0, 1.0
    else:
        lo, hi = float(X.min()), float(X.max())
    if shape is not None:
        X = X.reshape(len(X), *shape)
    return X.astype(np.float32), y, lo, hi


def blobs(n: int, classes: int, dims: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters: one centre per class drawn uniformly in [-10, 10]^dims, points at
    standard deviation `spread` around it; classes as equal as n allows, examples shuffled."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10.0, 10.0, size=(classes, dims))
    y = np.arange(n, dtype=np.int64) % classes
    rng.shuffle(y)
    X = centres[y] + spread * rng.standard_normal((n, dims))
    return X.astype(np.float32), y


def moons(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles in 2-D (class 0 the upper one, class 1 the lower, n // 2 and the
    rest), with Gaussian noise of standard deviation `noise`; examples shuffled."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    n1 = n - n0
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n1)
    X = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], 1), np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)])
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    X = X + noise * rng.standard_normal(X.shape)
    order = rng.permutation(n)
    return X[order].astype(np.float32), y[order]


# -- user arrays ------------------------------------------------------------------------------------


def read_arrays(path: str, label: str, features: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from a .npz (arrays by name) or a .csv (a header row; every column but `label` is a
    feature). Labels that are not all integers (a CSV of names) are numbered in sorted order."""
    p = Path(path)
    if not p.exists():
        raise OpError(f"{shown(path)}: no such file", field="path")
    if p.is_dir():
        raise OpError(f"{shown(path)}: is a directory, expected a file", field="path")
    for problem in name_problems(path, label, features):  # what `expc check` reports too
        raise problem
    X, y = _read_npz(path, label, features) if p.suffix.lower() == ".npz" else _read_csv(path, label)
    if not np.all(np.isfinite(X)):
        bad = int(np.argwhere(~np.isfinite(X.reshape(len(X), -1)))[0][0])
        raise OpError(f"{shown(path)}: example {bad} has a NaN or infinite feature", field="path")
    return X.astype(np.float32), _labels(y, path, label)


def _read_npz(path: str, label: str, features: str | None) -> tuple[np.ndarray, np.ndarray]:
    name = shown(path)
    features = npz_features(path, npz_names(path), label, features)  # names checked by name_problems
    try:
        with np.load(path, allow_pickle=False) as npz:
            X, y = npz[features], npz[label]
    except ValueError:  # object arrays: they would need unpickling
        raise OpError(f"{name}: an array holds Python objects, and expc never unpickles", field="path",
                      hint="save plain numeric arrays (np.savez)") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise OpError(f"{name}: not a readable .npz file ({e})", field="path") from None
    if X.dtype.kind not in "biuf":
        raise OpError(f"{name}: array {features!r} has dtype {X.dtype}, expected numbers", field="path")
    if X.ndim == 1:
        X = X[:, None]
    if y.ndim != 1 or len(y) != len(X):
        raise OpError(f"{name}: array {label!r} has shape {list(y.shape)}, expected one label per example "
                      f"([{len(X)}])", field="label")
    if len(X) == 0:
        raise OpError(f"{name}: empty source: no examples", field="path")
    return X, y


def _read_csv(path: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    text = _read_utf8(path)
    name = shown(path)
    reader = _csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise OpError(f"{name}: empty source: no header row", field="path")
        header = [h.strip() for h in header]
        li = header.index(label)  # there: checked by name_problems
        feats = [i for i in range(len(header)) if i != li]
        if not feats:
            raise OpError(f"{name}:1: no feature columns: {label!r} is the only column", field="path")
        rows, labels = [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise OpError(f"{name}:{reader.line_num}: {len(row)} fields, the header has {len(header)}",
                              field="path")
            values = []
            for i in feats:
                try:
                    values.append(float(row[i]))
                except ValueError:
                    raise OpError(f"{name}:{reader.line_num}: column {header[i]!r} holds {row[i]!r}, not a number",
                                  field="path", hint="features must be numbers: drop or encode that column") from None
            if not row[li].strip():
                raise OpError(f"{name}:{reader.line_num}: empty {label!r} (every row needs a label)", field="path")
            rows.append(values)
            labels.append(row[li].strip())
    except _csv.Error as e:
        raise OpError(f"{name}:{reader.line_num}: malformed CSV: {e}", field="path") from None
    if not rows:
        raise OpError(f"{name}: empty source: no rows", field="path")
    return np.asarray(rows, dtype=np.float64), np.asarray(labels)


def _labels(y: np.ndarray, path: str, label: str) -> np.ndarray:
    """Whole-number labels >= 0 are kept as they are (gaps allowed: classes = max + 1); labels that
    are not numbers (names) are numbered 0..k-1 in sorted order."""
    if y.dtype.kind in "US":
        try:
            as_num = y.astype(np.float64)
        except ValueError:
            _, idx = np.unique(y, return_inverse=True)
            return idx.astype(np.int64)
        y = as_num
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        raise OpError(f"{shown(path)}: labels {label!r} have dtype {y.dtype}", field="label")
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise OpError(f"{shown(path)}: labels {label!r} are not whole numbers (e.g. {y[y != np.round(y)][0]:g})",
                      field="label", hint="a classifier's labels are class numbers 0..k-1")
    if y.min() < 0:
        raise OpError(f"{shown(path)}: labels {label!r} must be >= 0 (found {int(y.min())})", field="label")
    return y.astype(np.int64)


# -- subsets ----------------------------------------------------------------------------------------


def held_out_count(n: int, test: float) -> int:
    """How many of n examples a split holds out (as the text split counts): a share rounded, or a count."""
    k = max(1, int(test) if test >= 1 else round(n * test))
    if k >= n:
        raise OpError(f"cannot split {n} examples with test = {test:g}: the train part would be empty", field="test")
    return k


def stratified_split(y: np.ndarray, test: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices, each in the original order: the test part holds `held_out_count` examples,
    shared among the classes in proportion to their sizes (largest remainders first), each class's
    drawn from a seeded permutation."""
    n = len(y)
    k = held_out_count(n, test)
    labels, counts = np.unique(y, return_counts=True)
    quota = counts * (k / n)
    take = np.floor(quota).astype(np.int64)
    for i in np.argsort(-(quota - take), kind="stable")[: k - int(take.sum())]:
        take[i] += 1
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(y == c))[:t] for c, t in zip(labels, take)]
    mask = np.zeros(n, dtype=bool)
    mask[np.concatenate(held)] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


# -- the combinators on tensors (split, take, mix) ----------------------------------------------------


def _subset(d: TensorData, X: np.ndarray, y: np.ndarray, out_dir: Path, source: str,
            file: str = "tensors.safetensors") -> TensorData:
    """A part of `d`: same label space and feature range."""
    return TensorData.write(out_dir, X, y, source, classes=d.classes, lo=d.lo, hi=d.hi, file=file)


def split_tensors(d: TensorData, test: float, seed: int, out_dir: Path, desc: str) -> dict[str, TensorData]:
    X, y = d.load()
    train, held = stratified_split(y, test, seed)
    return {
        "train": _subset(d, X[train], y[train], out_dir, desc + ".train", file="train.safetensors"),
        "test": _subset(d, X[held], y[held], out_dir, desc + ".test", file="test.safetensors"),
    }


def take_tensors(d: TensorData, n: int, out_dir: Path) -> TensorData:
    X, y = d.load()
    return _subset(d, X[:n], y[:n], out_dir, f"take({d.source}, {n})")


def mix_tensors(sources: list, weights: list[float] | None, n: int | None, seed: int, unit: str,
                out_dir: Path) -> TensorData:
    """The text mix's selection (runtime/data/sources.mix: same seeded shares and shuffle) applied to
    examples of tensors; every source must have one feature shape. Labels are kept as they are."""
    from expc.runtime.data.sources import mix as mix_examples

    if not all(isinstance(d, TensorData) for d in sources):
        raise OpError("mix takes text datasets or tensors, not both", field="sources")
    if unit != "examples":
        raise OpError(f'unit = "{unit}" counts text; a mix of tensors counts examples', field="unit")
    first = sources[0]
    for i, d in enumerate(sources[1:], 1):
        if d.shape != first.shape:
            raise OpError(f"source {i + 1} has examples of shape {d.shape}, source 1 of shape {first.shape}",
                          field=f"sources.{i}", hint="mix data of one feature shape")
    picks = mix_examples([[(s, i) for i in range(d.n)] for s, d in enumerate(sources)], weights, n, seed, unit)
    if not picks:
        raise OpError("empty mixture: every weighted share rounds to 0 examples", field="weights")
    loaded = [d.load() for d in sources]
    src = np.fromiter((s for s, _ in picks), dtype=np.int64, count=len(picks))
    idx = np.fromiter((i for _, i in picks), dtype=np.int64, count=len(picks))
    X = np.empty((len(picks), *first.shape), dtype=np.float32)
    y = np.empty(len(picks), dtype=np.int64)
    for s, (Xs, ys) in enumerate(loaded):
        at = src == s
        X[at], y[at] = Xs[idx[at]], ys[idx[at]]
    parts = ", ".join(d.source for d in sources)
    if weights is not None:
        parts += ", weights=[" + ", ".join(f"{w:g}" for w in weights) + "]"
    return TensorData.write(out_dir, X, y, f"mix({parts})", classes=max(d.classes for d in sources),
                            lo=min(d.lo for d in sources), hi=max(d.hi for d in sources))
