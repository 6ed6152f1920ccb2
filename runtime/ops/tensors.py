"""Array data (kind `data`, type `tensors`): feature arrays with integer labels for classifiers — the
data sets bundled in scikit-learn (`digits`, `iris`, `wine`, `breast_cancer`), generated ones (`blobs`,
`moons`), user files (`arrays`), and transforms (`classes`, `permute`, `invert`). `split`, `take` and
`mix` (runtime/ops/data.py) take tensors too and keep the type.

The value is a `TensorData` (runtime/data/arrays.py, whose docstring is the interface for operators
that consume it). `tensors` is not a subtype of `data` (text): a language model cannot read it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from expc.runtime.api import OpError, node_seed
from expc.runtime.data.arrays import TensorData
from expc.runtime.registry import FilePath, Input, Params, op
from expc.runtime.types import value_type


def _tensors_summary(v) -> str | None:
    """`n=1,797 examples of 1×8×8, 10 classes, in [0, 16]` (flat ones: `of 4 features`)."""
    if not isinstance(getattr(v, "n", None), int):
        return None
    shape = list(getattr(v, "shape", []) or [])
    of = f"{shape[0]} features" if len(shape) == 1 else "×".join(str(s) for s in shape)
    return f"n={v.n:,} examples of {of}, {v.classes} classes, in [{v.lo:.4g}, {v.hi:.4g}]"


TENSORS = value_type("tensors", "feature arrays with integer class labels (images or tabular rows)",
                     kinds={"data"}, artifact=TensorData, summary=_tensors_summary)


# -- bundled data sets ------------------------------------------------------------------------------


class BundledParams(Params):
    normalize: bool = Field(False, description="scale features into [0, 1] (images by the pixel maximum, "
                                               "tabular features each by its min and max)")


def _bundled(name: str, p: BundledParams, ctx) -> TensorData:
    from expc.runtime.data.array_sources import bundled

    X, y, lo, hi = bundled(name, p.normalize)
    return TensorData.write(ctx.out_dir, X, y, f"{name}({'normalize=true' if p.normalize else ''})", lo=lo, hi=hi)


@op("digits", params=BundledParams, kinds={"data"}, returns="tensors", version=1)
def digits(p: BundledParams, ctx) -> TensorData:
    """scikit-learn's handwritten digits: 1,797 images of 1×8×8 pixels, 10 classes.
    Pixels are in [0, 16], or [0, 1] with `normalize = true`."""
    return _bundled("digits", p, ctx)


@op("iris", params=BundledParams, kinds={"data"}, returns="tensors", version=1)
def iris(p: BundledParams, ctx) -> TensorData:
    """scikit-learn's iris flowers: 150 rows of 4 features, 3 classes."""
    return _bundled("iris", p, ctx)


@op("wine", params=BundledParams, kinds={"data"}, returns="tensors", version=1)
def wine(p: BundledParams, ctx) -> TensorData:
    """scikit-learn's wine recognition set: 178 rows of 13 features, 3 classes."""
    return _bundled("wine", p, ctx)


@op("breast_cancer", params=BundledParams, kinds={"data"}, returns="tensors", version=1)
def breast_cancer(p: BundledParams, ctx) -> TensorData:
    """scikit-learn's Wisconsin breast cancer set: 569 rows of 30 features, 2 classes."""
    return _bundled("breast_cancer", p, ctx)


# -- generated --------------------------------------------------------------------------------------


class BlobsParams(Params):
    n: int = Field(300, ge=2, le=10_000_000, description="number of examples")
    classes: int = Field(3, ge=2, le=10_000, description="number of clusters, one per class")
    dims: int = Field(2, ge=1, le=100_000, description="number of features")
    spread: float = Field(1.0, ge=0, description="standard deviation of each cluster (centres lie in [-10, 10])")
    seed: int = Field(0, description="generator seed")


@op("blobs", params=BlobsParams, kinds={"data"}, returns="tensors", version=1)
def blobs(p: BlobsParams, ctx) -> TensorData:
    """Gaussian clusters, one per class.
    Centres are uniform in [-10, 10]^dims; classes are as equal as n allows."""
    from expc.runtime.data.array_sources import blobs as generate

    if p.n < p.classes:
        raise OpError(f"n = {p.n} examples cannot cover classes = {p.classes}", field="n")
    X, y = generate(p.n, p.classes, p.dims, p.spread, node_seed(p.seed, ctx.seed))
    desc = f"blobs(n={p.n}, classes={p.classes}, dims={p.dims}, spread={p.spread:g}, seed={p.seed})"
    return TensorData.write(ctx.out_dir, X, y, desc, classes=p.classes)


class MoonsParams(Params):
    n: int = Field(300, ge=2, le=10_000_000, description="number of examples (half per moon)")
    noise: float = Field(0.1, ge=0, description="standard deviation of the Gaussian noise added to each point")
    seed: int = Field(0, description="generator seed")


@op("moons", params=MoonsParams, kinds={"data"}, returns="tensors", version=1)
def moons(p: MoonsParams, ctx) -> TensorData:
    """Two interleaving half circles in 2-D, one per class, with Gaussian noise."""
    from expc.runtime.data.array_sources import moons as generate

    X, y = generate(p.n, p.noise, node_seed(p.seed, ctx.seed))
    return TensorData.write(ctx.out_dir, X, y, f"moons(n={p.n}, noise={p.noise:g}, seed={p.seed})", classes=2)


# -- user files -------------------------------------------------------------------------------------


class ArraysParams(Params):
    path: FilePath = Field(description="a .npz file (arrays by name) or a .csv file with a header row")
    label: str = Field("y", description="the array (.npz) or column (.csv) holding the integer labels")
    features: str | None = Field(None, description='the .npz array holding the features (default: "x" or "X", '
                                                   "or the only other array); a CSV's are all its other columns")


def _precheck_arrays(args: dict) -> list[OpError]:
    """At check time, the file's array names (.npz) or header (.csv) against `label` and `features`."""
    path, label, features = args.get("path"), args.get("label", "y"), args.get("features")
    if not isinstance(path, str) or not isinstance(label, str) or not isinstance(features, (str, type(None))):
        return []  # not constants: known when the program runs
    if not Path(path).is_file():
        return []  # the checker reports a missing path itself
    from expc.runtime.data.array_files import name_problems

    return name_problems(path, label, features)


@op("arrays", params=ArraysParams, kinds={"data"}, returns="tensors", version=1, precheck=_precheck_arrays)
def arrays(p: ArraysParams, ctx) -> TensorData:
    """Labelled arrays from a .npz or .csv file.
    A .npz is loaded without pickle (features of any shape [n, ...]); a .csv's features are its numeric
    columns other than `label`. Labels that are not integers (names) are numbered in sorted order."""
    from expc.runtime.data.array_sources import read_arrays

    X, y = read_arrays(p.path, p.label, p.features)
    extra = f", features={p.features}" if p.features else ""
    return TensorData.write(ctx.out_dir, X, y, f"arrays({Path(p.path).name}, label={p.label}{extra})")


# -- transforms -------------------------------------------------------------------------------------


class ClassesParams(Params):
    data: Input["tensors"] = Field(description="the labelled data")
    labels: list[int] = Field(min_length=1, description="the labels to keep")
    relabel: bool = Field(True, description="number the kept labels 0..k-1 in the order given (false: keep them)")

    @field_validator("labels")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if any(x < 0 for x in v):
            raise ValueError("labels are >= 0")
        if len(set(v)) != len(v):
            raise ValueError("labels must be distinct")
        return v


@op("classes", params=ClassesParams, kinds={"data"}, returns="tensors", version=1)
def classes(p: ClassesParams, ctx) -> TensorData:
    """The examples of some classes, relabelled 0..k-1.
    Keeps the examples whose label is one of `labels` (in their order); relabelled 0..k-1 in the order
    of `labels` unless `relabel = false`."""
    import numpy as np

    d: TensorData = p.data
    missing = [c for c in p.labels if c >= d.classes]
    if missing:
        raise OpError(f"label {missing[0]} is not a class of {d.source} (its labels are 0..{d.classes - 1})",
                      field="labels")
    X, y = d.load()
    keep = np.isin(y, p.labels)
    if not keep.any():
        raise OpError(f"no example of {d.source} has one of the labels {p.labels}", field="labels")
    X, y = X[keep], y[keep]
    k = d.classes
    if p.relabel:
        table = np.full(d.classes, -1, dtype=np.int64)
        table[p.labels] = np.arange(len(p.labels))
        y, k = table[y], len(p.labels)
    labels = ", ".join(str(c) for c in p.labels)
    desc = f"classes({d.source}, labels=[{labels}]{'' if p.relabel else ', relabel=false'})"
    return TensorData.write(ctx.out_dir, X, y, desc, classes=k, lo=d.lo, hi=d.hi)


class PermuteParams(Params):
    data: Input["tensors"] = Field(description="the data whose features to permute")
    seed: int = Field(0, description="the permutation's seed")


@op("permute", params=PermuteParams, kinds={"data"}, returns="tensors", version=1)
def permute(p: PermuteParams, ctx) -> TensorData:
    """One fixed random permutation of the features, the same for every example.
    As in permuted MNIST: an image's pixels move together with their channels; flat features are
    permuted as they are."""
    import numpy as np

    d: TensorData = p.data
    X, y = d.load()
    if len(d.shape) == 3:  # [channels, height, width]: move pixels, keep each pixel's channels together
        c = d.shape[0]
        flat = X.reshape(len(X), c, -1)
        X = flat[:, :, np.random.default_rng(node_seed(p.seed, ctx.seed)).permutation(flat.shape[2])].reshape(X.shape)
    else:
        flat = X.reshape(len(X), -1)
        X = flat[:, np.random.default_rng(node_seed(p.seed, ctx.seed)).permutation(flat.shape[1])].reshape(X.shape)
    return TensorData.write(ctx.out_dir, X, y, f"permute({d.source}, seed={p.seed})", classes=d.classes,
                            lo=d.lo, hi=d.hi)


class InvertParams(Params):
    data: Input["tensors"] = Field(description="the data to invert")


@op("invert", params=InvertParams, kinds={"data"}, returns="tensors", version=1)
def invert(p: InvertParams, ctx) -> TensorData:
    """Every feature mirrored in the data's range [lo, hi]: x -> lo + hi - x (1 - x for pixels in [0, 1])."""
    d: TensorData = p.data
    X, y = d.load()
    return TensorData.write(ctx.out_dir, (d.lo + d.hi) - X, y, f"invert({d.source})", classes=d.classes,
                            lo=d.lo, hi=d.hi)
