"""Array data (`tensors`): each operator called directly — shapes, dtypes, ranges, label sets,
determinism — and the errors users see for their own files. The language side (types at check time,
content-keyed files through `expc run`) is in tests/test_tensors_lang.py."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from pydantic import ValidationError
from _opctx import OpContext, run

from expc.runtime.api import Artifact, OpError
from expc.runtime.data.arrays import TensorData
from expc.runtime.data.values import TextData
from expc.runtime.ops import data as D
from expc.runtime.ops import tensors as T


class Ctxs:
    """A fresh OpContext (own output directory) per call."""

    def __init__(self, root):
        self.root, self.i = root, 0

    def __call__(self) -> OpContext:
        self.i += 1
        return OpContext(self.root / f"c{self.i}")


@pytest.fixture
def ctx(tmp_path):
    return Ctxs(tmp_path)


def _sha(d: TensorData) -> str:
    return hashlib.sha256(d.file_path.read_bytes()).hexdigest()


def _tensors(ctx, X, y, classes=None, **kw) -> TensorData:
    return TensorData.write(ctx().out_dir, np.asarray(X), np.asarray(y), "test", classes, **kw)


# -- the value ----------------------------------------------------------------------------------------


def test_write_load_and_json_roundtrip(ctx):
    X = np.arange(24, dtype=np.float64).reshape(4, 2, 3)
    d = _tensors(ctx, X, [0, 2, 1, 2])
    assert (d.n, d.shape, d.classes, d.lo, d.hi) == (4, [2, 3], 3, 0.0, 23.0)
    Xl, yl = d.load()
    assert Xl.dtype == np.float32 and yl.dtype == np.int64 and Xl.shape == (4, 2, 3)
    assert np.array_equal(Xl, X) and yl.tolist() == [0, 2, 1, 2]
    back = Artifact.from_json(json.loads(json.dumps(d.to_json())), d.path)
    assert isinstance(back, TensorData) and back == d and np.array_equal(back.load()[0], Xl)
    assert d.to_json()["$artifact"] == "tensors" and d.file_path.suffix == ".safetensors"


@pytest.mark.parametrize(("X", "y", "classes", "message"), [
    (np.zeros(3), [0, 1, 2], None, "shape \\[n, \\*shape\\]"),
    (np.zeros((0, 2)), np.zeros(0, dtype=int), None, "no examples"),
    (np.zeros((3, 2)), [0, 1], None, "one label per example"),
    (np.zeros((2, 2)), [0.5, 1], None, "integers"),
    (np.zeros((2, 2)), [0, -1], None, ">= 0"),
    (np.zeros((2, 2)), [0, 3], 3, "not below classes = 3"),
    (np.array([[0, np.nan]]), [0], None, "NaN"),
])
def test_write_rejects_malformed_arrays(ctx, X, y, classes, message):
    with pytest.raises(ValueError, match=message):
        _tensors(ctx, X, y, classes)


# -- bundled data sets ------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "n", "shape", "k"), [
    (T.digits, 1797, [1, 8, 8], 10), (T.iris, 150, [4], 3), (T.wine, 178, [13], 3), (T.breast_cancer, 569, [30], 2),
])
def test_bundled_sets(ctx, op, n, shape, k):
    d = run(op, ctx())
    X, y = d.load()
    assert (d.n, d.shape, d.classes) == (n, shape, k)
    assert X.shape == (n, *shape) and X.dtype == np.float32 and y.shape == (n,) and y.dtype == np.int64
    assert set(y.tolist()) == set(range(k))
    assert d.lo <= X.min() and X.max() <= d.hi
    assert _sha(run(op, ctx())) == _sha(d)  # the same arrays every time
    norm = run(op, ctx(), normalize=True)
    Xn, yn = norm.load()
    assert (norm.lo, norm.hi) == (0.0, 1.0) and Xn.min() == 0.0 and Xn.max() == 1.0
    assert np.array_equal(yn, y) and norm.source == f"{op.name}(normalize=true)"


def test_digits_are_images_in_their_nominal_range(ctx):
    raw, norm = run(T.digits, ctx()), run(T.digits, ctx(), normalize=True)
    X, _ = raw.load()
    assert (raw.lo, raw.hi) == (0.0, 16.0) and np.array_equal(X, np.round(X))  # integer pixel counts
    assert np.allclose(norm.load()[0] * 16, X)
    assert raw.source == "digits()"


def test_tabular_normalize_scales_each_feature(ctx):
    X, _ = run(T.wine, ctx(), normalize=True).load()
    assert np.allclose(X.min(axis=0), 0) and np.allclose(X.max(axis=0), 1)


# -- generated --------------------------------------------------------------------------------------


def test_blobs(ctx):
    d = run(T.blobs, ctx(), n=103, classes=4, dims=5, spread=0.5, seed=1)
    X, y = d.load()
    assert X.shape == (103, 5) and d.classes == 4 and sorted(np.bincount(y)) == [25, 26, 26, 26]
    assert y[:10].tolist() != sorted(y[:10].tolist())  # shuffled
    for c in range(4):  # each class is a tight cluster far from the others' centres
        assert X[y == c].std(axis=0).max() < 1.0
    assert _sha(run(T.blobs, ctx(), n=103, classes=4, dims=5, spread=0.5, seed=1)) == _sha(d)
    assert _sha(run(T.blobs, ctx(), n=103, classes=4, dims=5, spread=0.5, seed=2)) != _sha(d)
    tight, _ = run(T.blobs, ctx(), n=20, classes=2, spread=0).load()
    assert len(np.unique(tight, axis=0)) == 2
    with pytest.raises(OpError, match="cannot cover") as e:
        run(T.blobs, ctx(), n=3, classes=4)
    assert e.value.field == "n"


def test_moons(ctx):
    d = run(T.moons, ctx(), n=101, noise=0.0, seed=3)
    X, y = d.load()
    assert X.shape == (101, 2) and d.classes == 2 and np.bincount(y).tolist() == [50, 51]
    upper, lower = X[y == 0], X[y == 1]
    assert np.allclose((upper**2).sum(1), 1, atol=1e-5) and (upper[:, 1] >= -1e-6).all()
    assert np.allclose(((lower - [1, 0.5]) ** 2).sum(1), 1, atol=1e-5) and (lower[:, 1] <= 0.5 + 1e-6).all()
    noisy = run(T.moons, ctx(), n=101, noise=0.2, seed=3)
    assert _sha(noisy) == _sha(run(T.moons, ctx(), n=101, noise=0.2, seed=3))
    assert _sha(noisy) != _sha(run(T.moons, ctx(), n=101, noise=0.2, seed=4))


# -- user files -------------------------------------------------------------------------------------


def test_arrays_npz(tmp_path, ctx):
    f = tmp_path / "d.npz"
    X = np.random.default_rng(0).normal(size=(6, 2, 3))
    np.savez(f, x=X, y=np.array([0, 1, 2, 0, 1, 4]), other=np.zeros(2))
    d = run(T.arrays, ctx(), path=str(f))
    Xl, yl = d.load()
    assert d.shape == [2, 3] and d.classes == 5 and np.allclose(Xl, X) and yl.tolist() == [0, 1, 2, 0, 1, 4]
    assert d.source == "arrays(d.npz, label=y)"
    np.savez(f, feats=X[:, 0, 0], target=np.array([1.0, 0, 1, 0, 1, 0]))  # a 1-D feature: one per example
    d = run(T.arrays, ctx(), path=str(f), label="target")
    assert d.shape == [1] and d.load()[1].dtype == np.int64


def test_arrays_npz_errors(tmp_path, ctx):
    f = tmp_path / "d.npz"
    np.savez(f, x=np.zeros((3, 2)), labels=np.array([0, 1, 0]))
    with pytest.raises(OpError) as e:
        run(T.arrays, ctx(), path=str(f), label="label")
    assert "d.npz: no array 'label' (arrays: x, labels)" in e.value.message
    assert e.value.field == "label" and e.value.hint == "did you mean 'labels'?"
    with pytest.raises(OpError, match="no array 'xs'") as e:
        run(T.arrays, ctx(), path=str(f), label="labels", features="xs")
    assert e.value.field == "features" and "'x'" in e.value.hint
    np.savez(f, a=np.zeros((3, 2)), b=np.zeros((3, 2)), y=np.array([0, 1, 0]))
    with pytest.raises(OpError, match="which array holds the features"):
        run(T.arrays, ctx(), path=str(f))
    np.savez(f, x=np.zeros((3, 2)), y=np.array([0.5, 1, 0]))
    with pytest.raises(OpError, match="not whole numbers") as e:
        run(T.arrays, ctx(), path=str(f))
    assert e.value.field == "label"
    np.savez(f, x=np.zeros((3, 2)), y=np.array([0, 1]))
    with pytest.raises(OpError, match="one label per example"):
        run(T.arrays, ctx(), path=str(f))
    np.savez(f, x=np.array([{"a": 1}, {}, {}], dtype=object), y=np.array([0, 1, 0]))
    with pytest.raises(OpError, match="d.npz: an array holds Python objects, and expc never unpickles"):
        run(T.arrays, ctx(), path=str(f))
    f.write_bytes(b"not a zip")
    with pytest.raises(OpError, match="d.npz: not a .npz archive"):
        run(T.arrays, ctx(), path=str(f))
    txt = tmp_path / "d.txt"
    txt.write_text("1,2\n")
    with pytest.raises(OpError, match="expected a .npz or .csv"):
        run(T.arrays, ctx(), path=str(txt))


def test_arrays_csv(tmp_path, ctx):
    f = tmp_path / "d.csv"
    f.write_text("a,species,b\n1,setosa,2.5\n3,virginica,4\n\n5,setosa,-6e-1\n7,versicolor,8\n")
    d = run(T.arrays, ctx(), path=str(f), label="species")
    X, y = d.load()
    assert np.allclose(X, [[1, 2.5], [3, 4], [5, -0.6], [7, 8]])
    assert y.tolist() == [0, 2, 0, 1] and d.classes == 3 and d.shape == [2]  # names numbered in sorted order
    f.write_text("x,y\n0.5,1\n1.5,0\n")
    assert run(T.arrays, ctx(), path=str(f)).load()[1].tolist() == [1, 0]


def test_arrays_csv_errors(tmp_path, ctx):
    f = tmp_path / "d.csv"
    f.write_text("x1,x2,label\n1,2,0\n3,n/a,1\n")
    with pytest.raises(OpError) as e:
        run(T.arrays, ctx(), path=str(f), label="lable")
    assert "d.csv:1: no column 'lable' (columns: x1, x2, label)" in e.value.message
    assert e.value.field == "label" and e.value.hint == "did you mean 'label'?"
    with pytest.raises(OpError) as e:
        run(T.arrays, ctx(), path=str(f), label="label")
    assert "d.csv:3: column 'x2' holds 'n/a', not a number" in e.value.message and e.value.field == "path"
    f.write_text("x1,label\n1,0\n2\n")
    with pytest.raises(OpError, match="d.csv:3: 1 fields, the header has 2"):
        run(T.arrays, ctx(), path=str(f), label="label")
    f.write_text("x1,label\n1,\n")
    with pytest.raises(OpError, match="d.csv:2: empty 'label'"):
        run(T.arrays, ctx(), path=str(f), label="label")
    f.write_text("x1,label\n1,-1\n")
    with pytest.raises(OpError, match=">= 0"):
        run(T.arrays, ctx(), path=str(f), label="label")
    f.write_text("x1,label\n")
    with pytest.raises(OpError, match="empty source: no rows"):
        run(T.arrays, ctx(), path=str(f), label="label")
    f.write_text("x1,label\ninf,1\n")
    with pytest.raises(OpError, match="example 0 has a NaN or infinite feature"):
        run(T.arrays, ctx(), path=str(f), label="label")
    with pytest.raises(OpError, match="no such file") as e:
        run(T.arrays, ctx(), path=str(tmp_path / "nope.csv"))
    assert e.value.field == "path"


# -- transforms -------------------------------------------------------------------------------------


def test_classes_keeps_and_relabels(ctx):
    d = run(T.digits, ctx())
    X, y = d.load()
    sub = run(T.classes, ctx(), data=d, labels=[8, 3])
    Xs, ys = sub.load()
    keep = (y == 3) | (y == 8)
    assert sub.classes == 2 and sub.n == keep.sum() and np.array_equal(Xs, X[keep])
    assert np.array_equal(ys, np.where(y[keep] == 8, 0, 1))  # relabelled in the order given
    assert (sub.lo, sub.hi) == (d.lo, d.hi) and sub.source == "classes(digits(), labels=[8, 3])"
    kept = run(T.classes, ctx(), data=d, labels=[8, 3], relabel=False)
    assert kept.classes == 10 and set(kept.load()[1].tolist()) == {3, 8}


def test_classes_errors(ctx):
    d = run(T.iris, ctx())
    with pytest.raises(OpError, match=r"label 5 is not a class of iris\(\) \(its labels are 0..2\)") as e:
        run(T.classes, ctx(), data=d, labels=[0, 5])
    assert e.value.field == "labels"
    with pytest.raises(ValidationError, match="distinct"):
        run(T.classes, ctx(), data=d, labels=[1, 1])
    few = _tensors(ctx, np.zeros((2, 1)), [0, 0], classes=3)
    with pytest.raises(OpError, match="no example of test has one of the labels"):
        run(T.classes, ctx(), data=few, labels=[2])


def test_permute_is_one_permutation_for_every_example(ctx):
    n, f = 5, 12
    X = np.arange(f)[None, :] + 100 * np.arange(n)[:, None]
    d = _tensors(ctx, X, np.zeros(n, dtype=int))
    P, _ = run(T.permute, ctx(), data=d, seed=4).load()
    perm = P[0].astype(int)
    assert sorted(perm.tolist()) == list(range(f)) and perm.tolist() != list(range(f))
    assert np.array_equal(P - 100 * np.arange(n)[:, None], np.tile(perm, (n, 1)))
    assert np.array_equal(run(T.permute, ctx(), data=d, seed=4).load()[0], P)
    assert not np.array_equal(run(T.permute, ctx(), data=d, seed=5).load()[0], P)


def test_permute_moves_pixels_with_their_channels(ctx):
    pixels = np.arange(9).reshape(3, 3)
    X = np.stack([np.stack([c * 10 + pixels for c in range(3)])] * 2)  # [2, 3, 3, 3]
    d = _tensors(ctx, X, [0, 1])
    P, _ = run(T.permute, ctx(), data=d, seed=0).load()
    assert P.shape == (2, 3, 3, 3) and np.array_equal(P // 10, X // 10)  # every channel stays itself
    assert np.array_equal(P[:, 1] - 10, P[:, 0]) and not np.array_equal(P, X)


def test_invert_mirrors_in_the_range(ctx):
    norm = run(T.digits, ctx(), normalize=True)
    X, y = norm.load()
    inv = run(T.invert, ctx(), data=norm)
    Xi, yi = inv.load()
    assert np.allclose(Xi, 1 - X) and np.array_equal(yi, y) and (inv.lo, inv.hi) == (0.0, 1.0)
    raw = run(T.digits, ctx())
    assert np.array_equal(run(T.invert, ctx(), data=raw).load()[0], 16 - raw.load()[0])
    shifted = _tensors(ctx, [[2.0], [3.0], [5.0]], [0, 1, 0], lo=1.0, hi=5.0)
    twice = run(T.invert, ctx(), data=run(T.invert, ctx(), data=shifted))
    assert run(T.invert, ctx(), data=shifted).load()[0].ravel().tolist() == [4, 3, 1]
    assert np.array_equal(twice.load()[0], shifted.load()[0])


# -- split, take and mix on tensors -----------------------------------------------------------------


def test_split_is_stratified_ordered_and_seeded(ctx):
    d = run(T.digits, ctx())
    X, y = d.load()
    s = run(D.split, ctx(), data=d, test=0.1, seed=1)
    assert set(s) == {"train", "test"} and all(isinstance(v, TensorData) for v in s.values())
    (Xtr, ytr), (Xte, yte) = s["train"].load(), s["test"].load()
    assert len(yte) == round(1797 * 0.1) and len(ytr) + len(yte) == 1797
    assert all(abs(c - 18) <= 1 for c in np.bincount(yte, minlength=10))  # ~18 of each digit
    # a partition that keeps the original order: merging the parts by position gives the data back
    flat = X.reshape(len(X), -1)
    pos = {row.tobytes(): i for i, row in enumerate(flat)}
    idx_tr = [pos[r.tobytes()] for r in Xtr.reshape(len(Xtr), -1)]
    assert idx_tr == sorted(idx_tr)
    assert s["train"].path == s["test"].path and s["train"].file != s["test"].file
    assert s["test"].classes == 10 and (s["test"].lo, s["test"].hi) == (0.0, 16.0)
    assert s["test"].source == "split(digits(), test=0.1, seed=1).test"
    again = run(D.split, ctx(), data=d, test=0.1, seed=1)
    other = run(D.split, ctx(), data=d, test=0.1, seed=2)
    assert _sha(again["test"]) == _sha(s["test"]) and _sha(other["test"]) != _sha(s["test"])
    assert run(D.split, ctx(), data=d, test=7)["test"].n == 7


def test_split_tensors_errors(ctx):
    one = _tensors(ctx, [[1.0]], [0])
    with pytest.raises(OpError, match="train part would be empty") as e:
        run(D.split, ctx(), data=one, test=0.5)
    assert e.value.field == "test"


def test_take_tensors(ctx):
    d = run(T.iris, ctx())
    X, y = d.load()
    t = run(D.take, ctx(), data=d, n=7)
    assert isinstance(t, TensorData) and np.array_equal(t.load()[0], X[:7]) and t.classes == 3
    c = ctx()
    assert run(D.take, c, data=d, n=500).n == 150 and c.warnings[0][1] == "n"


def test_mix_tensors(ctx):
    a = _tensors(ctx, np.zeros((10, 2)), np.zeros(10, dtype=int), classes=2)
    b = _tensors(ctx, np.ones((5, 2)), np.ones(5, dtype=int), classes=2)
    m = run(D.mix, ctx(), sources=[a, b], seed=3)
    X, y = m.load()
    assert isinstance(m, TensorData) and m.n == 15 and np.bincount(y).tolist() == [10, 5]
    assert np.array_equal(X[:, 0], y.astype(np.float32)) and y.tolist() != sorted(y.tolist())  # rows kept, shuffled
    w = run(D.mix, ctx(), sources=[a, b], weights=[1, 3], n=40)
    assert np.bincount(w.load()[1]).tolist() == [10, 30]  # b cycled
    assert _sha(w) == _sha(run(D.mix, ctx(), sources=[a, b], weights=[1, 3], n=40))


def test_mix_tensors_errors(ctx):
    a = _tensors(ctx, np.zeros((4, 2)), [0, 1, 0, 1])
    wide = _tensors(ctx, np.zeros((4, 3)), [0, 1, 0, 1])
    with pytest.raises(OpError, match=r"source 2 has examples of shape \[3\], source 1 of shape \[2\]") as e:
        run(D.mix, ctx(), sources=[a, wide])
    assert e.value.field == "sources.1"
    with pytest.raises(OpError, match="counts examples") as e:
        run(D.mix, ctx(), sources=[a, a], weights=[1, 1], unit="bytes")
    assert e.value.field == "unit"
    text = TextData.write(ctx().out_dir, ["x"], "t")
    with pytest.raises(OpError, match="not both"):
        run(D.mix, ctx(), sources=[text, a])


def test_declarations_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, expc.runtime.ops.tensors, expc.runtime.ops.data, expc.runtime.data.arrays; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'sklearn', 'scipy', 'safetensors', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
