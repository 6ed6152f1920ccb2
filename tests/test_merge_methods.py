"""TIES, DARE, SLERP, where: each against a direct PyTorch/numpy reference on the full state dicts."""

from __future__ import annotations

import fnmatch
import hashlib
import math

import numpy as np
import pytest
import torch
from _merge_models import max_err, save_tiny, state_dict
from _opctx import OpContext

from expc.runtime.merge.engine import run_algebra
from expc.runtime.ops.merge import dare, slerp, ties, where
from expc.runtime.values import ModelDir

M0, M1, M2 = {"model": 0}, {"model": 1}, {"model": 2}


def call(name, **args):
    return {"op": "call", "name": name, "args": args}


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return [save_tiny(root / f"m{i}", seed=i, shard="30KB" if i == 1 else None) for i in range(3)]


@pytest.fixture(scope="module")
def sds(paths):
    return [state_dict(p) for p in paths]


def dirs(paths):
    return [ModelDir(path=p) for p in paths]


# ------------------------------------------------------------------------------------------ references


def ties_ref(base, models, weights, density, normalize=True):
    """TIES as mergekit computes it: stacked, top-k by argsort, sign of the weighted sum."""
    deltas = []
    for m in models:
        d = (m - base).reshape(-1)
        keep = torch.zeros_like(d, dtype=torch.bool)
        k = int(density * d.numel())
        keep[torch.argsort(d.abs(), descending=True)[:k]] = True
        deltas.append((d * keep).view_as(base))
    w = torch.tensor(weights).view(-1, *([1] * base.dim()))
    wd = torch.stack(deltas) * w
    sign = (wd.sum(0) >= 0).float() * 2 - 1
    agree = wd.sign() == sign
    mixed = (wd * agree).sum(0)
    if normalize:
        divisor = (w * agree).sum(0)
        divisor[divisor == 0] = 1
        mixed = mixed / divisor
    return base + mixed


def dare_ref(base, models, weights, density, rescale, seed, name):
    out = base.clone()
    for i, (w, m) in enumerate(zip(weights, models)):
        s = int.from_bytes(hashlib.sha256(f"{seed}\0{name}\0{i}".encode()).digest()[:8], "little") & (2**63 - 1)
        keep = torch.rand(base.shape, generator=torch.Generator().manual_seed(s)) < density
        d = (m - base) * keep
        out = out + w * (d / density if rescale else d)
    return out


def slerp_ref(a, b, t):
    """mergekit's slerp, in float64 numpy."""
    v0, v1 = a.double().numpy(), b.double().numpy()
    n0, n1 = np.linalg.norm(v0), np.linalg.norm(v1)
    u0 = v0 / n0 if n0 > 1e-8 else v0
    u1 = v1 / n1 if n1 > 1e-8 else v1
    dot = np.sum(u0 * u1)
    if abs(dot) > 0.9995:
        res = (1 - t) * v0 + t * v1
    else:
        th = np.arccos(dot)
        res = np.sin(th * (1 - t)) / np.sin(th) * v0 + np.sin(th * t) / np.sin(th) * v1
    return torch.from_numpy(res).float()


# ---------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("density, weights", [(0.5, [0.7, 0.3]), (0.2, [1.0, 1.0]), (1.0, [0.5, -0.5])])
def test_ties_matches_reference(paths, sds, tmp_path, density, weights):
    out = ties.fn(ties.params(base=dirs(paths)[0], models=dirs(paths)[1:], weights=weights, density=density),
                  OpContext(tmp_path))  # fmt: skip
    b, m1, m2 = sds
    ref = {k: ties_ref(b[k], [m1[k], m2[k]], weights, density) for k in b}
    assert max_err(state_dict(out.path), ref) < 1e-6


def test_ties_trims_to_density(paths, sds, tmp_path):
    # one model: TIES keeps exactly the top half of its task vector, unchanged
    out = ties.fn(ties.params(base=dirs(paths)[0], models=dirs(paths)[1:2], density=0.5), OpContext(tmp_path))
    b, m1, _ = sds
    merged = state_dict(out.path)
    k = "transformer.h.0.mlp.c_fc.weight"
    delta = merged[k] - b[k]
    kept = delta != 0
    assert kept.sum().item() == b[k].numel() // 2
    assert torch.allclose(delta[kept], (m1[k] - b[k])[kept], atol=1e-7)
    assert (m1[k] - b[k])[kept].abs().min() >= (m1[k] - b[k])[~kept].abs().max()


def test_ties_without_normalize_sums_agreeing_deltas(paths, sds, tmp_path):
    tree = call("ties", base=M0, models=[M1, M2], weights=[0.6, 0.6], density=0.7, normalize=False)
    out = run_algebra(paths, tree, OpContext(tmp_path))
    b, m1, m2 = sds
    ref = {k: ties_ref(b[k], [m1[k], m2[k]], [0.6, 0.6], 0.7, normalize=False) for k in b}
    assert max_err(state_dict(out.path), ref) < 1e-6


@pytest.mark.parametrize("density, rescale", [(0.5, True), (0.9, False), (1.0, True)])
def test_dare_matches_reference(paths, sds, tmp_path, density, rescale):
    p = dare.params(base=dirs(paths)[0], models=dirs(paths)[1:], weights=[0.5, 0.4], density=density,
                    rescale=rescale, seed=7)  # fmt: skip
    out = dare.fn(p, OpContext(tmp_path))
    b, m1, m2 = sds
    ref = {k: dare_ref(b[k], [m1[k], m2[k]], [0.5, 0.4], density, rescale, 7, k) for k in b}
    assert max_err(state_dict(out.path), ref) < 1e-6


def test_dare_drops_about_one_minus_density_and_is_seeded(paths, sds, tmp_path):
    tree = call("dare", base=M0, models=[M1], weights=[1.0], density=0.3, rescale=True, seed=3)
    a = state_dict(run_algebra(paths, tree, OpContext(tmp_path / "a")).path)
    again = state_dict(run_algebra(paths, tree, OpContext(tmp_path / "b")).path)
    tree["args"]["seed"] = 4
    other = state_dict(run_algebra(paths, tree, OpContext(tmp_path / "c")).path)
    b, m1, _ = sds
    kept = sum(((a[k] - b[k]) != 0).sum().item() for k in b)
    total = sum(b[k].numel() for k in b)
    assert abs(kept / total - 0.3) < 0.02
    k = "transformer.h.1.attn.c_attn.weight"
    sel = (a[k] - b[k]) != 0
    assert torch.allclose((a[k] - b[k])[sel], (m1[k] - b[k])[sel] / 0.3, atol=1e-6)
    assert all(torch.equal(a[k], again[k]) for k in a)
    assert not torch.equal(a[k], other[k])


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_slerp_matches_reference(paths, sds, tmp_path, t):
    out = slerp.fn(slerp.params(a=dirs(paths)[0], b=dirs(paths)[2], t=t), OpContext(tmp_path))
    a, _, b = sds
    ref = {k: slerp_ref(a[k], b[k], t) for k in a}
    assert max_err(state_dict(out.path), ref) < 1e-6


def test_slerp_of_colinear_tensors_is_lerp(paths, sds, tmp_path):
    out = run_algebra(paths[:1], call("slerp", a=M0, b={"op": "mul", "args": [2.0, M0]}, t=0.3),
                      OpContext(tmp_path))  # fmt: skip
    a = sds[0]
    assert max_err(state_dict(out.path), {k: 1.3 * a[k] for k in a}) < 1e-6


def test_slerp_preserves_norm_between_orthogonal_tensors():
    from expc.runtime.merge import kernels

    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = kernels.slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([math.sqrt(0.5)] * 2))


def test_where_selects_by_tensor_name(paths, sds, tmp_path):
    ctx = OpContext(tmp_path)
    out = where.fn(where.params(pattern="*.mlp.*", a=dirs(paths)[1], b=dirs(paths)[0]), ctx)
    b, m1, _ = sds
    merged = state_dict(out.path)
    mlp = [k for k in b if fnmatch.fnmatchcase(k, "*.mlp.*")]
    assert mlp and len(mlp) < len(b)
    for k in b:
        assert torch.equal(merged[k], m1[k] if k in mlp else b[k])  # copied bytes, exact
    assert ctx.warnings == []


def test_where_with_nested_methods_matches_reference(paths, sds, tmp_path):
    tree = call(
        "where",
        pattern="transformer.h.1.*",
        a=call("ties", base=M0, models=[M1, M2], weights=[0.5, 0.5], density=0.5),
        b={"op": "add", "args": [M0, {"op": "mul", "args": [0.5, {"op": "sub", "args": [M1, M0]}]}]},
    )
    out = run_algebra(paths, tree, OpContext(tmp_path))
    b, m1, m2 = sds
    ref = {
        k: ties_ref(b[k], [m1[k], m2[k]], [0.5, 0.5], 0.5)
        if k.startswith("transformer.h.1.")
        else 0.5 * b[k] + 0.5 * m1[k]
        for k in b
    }
    assert max_err(state_dict(out.path), ref) < 1e-6


def test_where_pattern_matching_nothing_is_warned(paths, tmp_path):
    ctx = OpContext(tmp_path)
    run_algebra(paths[:2], call("where", pattern="model.layers.*", a=M1, b=M0), ctx)
    assert ctx.warnings and "matches no tensor" in ctx.warnings[0][0] and ctx.warnings[0][1] == "expr"
