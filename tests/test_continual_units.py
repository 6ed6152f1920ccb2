"""Continual learning, piece by piece: LEEP and TransRate against hand computations, the matrix metrics
against a transcription of Avalanche's bookkeeping, native adapters (identity at start, a frozen
backbone), the methods on a tiny stream (determinism, what each keeps), and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _opctx import OpContext, run

from expc.runtime.api import OpError
from expc.runtime.continual import metrics
from expc.runtime.continual.bodies import NativeBody, NoLayer
from expc.runtime.continual.transfer import leep, transrate
from expc.runtime.ops import classify as C
from expc.runtime.ops import continual as CL
from expc.runtime.ops import fit as FIT
from expc.runtime.ops import tensors as TS
from expc.runtime.registry import load_registry

REG = load_registry()


# -- transferability: hand computations ------------------------------------------------------------------


def test_leep_matches_a_hand_computation():
    # 3 target examples (labels 0, 1, 1), a source model over 2 labels
    theta = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    y = np.array([0, 1, 1])
    # joint P(y, z) = (1/n) sum over examples of label y of theta_z
    p00, p01 = 0.9 / 3, 0.1 / 3
    p10, p11 = (0.2 + 0.4) / 3, (0.8 + 0.6) / 3
    pz0, pz1 = p00 + p10, p01 + p11
    c00, c01, c10, c11 = p00 / pz0, p01 / pz1, p10 / pz0, p11 / pz1  # P(y | z)
    eep = [0.9 * c00 + 0.1 * c01, 0.2 * c10 + 0.8 * c11, 0.4 * c10 + 0.6 * c11]
    by_hand = sum(math.log(e) for e in eep) / 3
    assert leep(theta, y) == pytest.approx(by_hand, abs=1e-12)
    # on paper: P(y|z) = [[0.6, 1/15], [0.4, 14/15]]; EEPs 0.5467, 0.8267, 0.72
    assert by_hand == pytest.approx((math.log(0.54 + 0.1 / 15) + math.log(0.08 + 0.8 * 14 / 15) + math.log(0.72)) / 3)
    assert by_hand == pytest.approx(-0.3743, abs=1e-4)
    # a source whose labels predict the target perfectly scores log 1 = 0, the best possible
    assert leep(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == pytest.approx(0.0, abs=1e-12)


def test_transrate_matches_a_hand_computation():
    # one feature: the coding rate is 1/2 log(1 + sum z^2 / (n eps))
    z = np.array([[1.0], [3.0], [-1.0], [-3.0]])  # mean 0 already
    y = np.array([0, 0, 1, 1])
    eps = 0.5
    rate_all = 0.5 * math.log(1 + (1 + 9 + 1 + 9) / (4 * eps))
    # Z is centred once, over all examples, then split by class
    rate_0 = 0.5 * math.log(1 + (1 + 9) / (2 * eps))
    rate_1 = 0.5 * math.log(1 + (1 + 9) / (2 * eps))
    assert transrate(z, y, eps) == pytest.approx(rate_all - (rate_0 + rate_1) / 2, abs=1e-12)
    # two features, checked against the determinant written out
    Z = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [0.0, -2.0]])
    M = np.eye(2) + Z.T @ Z / (4 * eps)
    det_all = M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0]
    y2 = np.array([0, 1, 0, 1])
    M0 = np.eye(2) + Z[y2 == 0].T @ Z[y2 == 0] / (2 * eps)
    M1 = np.eye(2) + Z[y2 == 1].T @ Z[y2 == 1] / (2 * eps)
    by_hand = 0.5 * math.log(det_all) - 0.25 * (math.log(np.linalg.det(M0)) + math.log(np.linalg.det(M1)))
    assert transrate(Z, y2, eps) == pytest.approx(by_hand, abs=1e-12)
    # the coding rate counts directions: classes each in their own subspace (the whole spans both)
    # transfer better than classes spread over the same directions
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    t = rng.normal(size=100)
    good = np.stack([np.where(labels == 0, t, 0.0), np.where(labels == 1, t, 0.0)], 1)
    good += 0.01 * rng.normal(size=(100, 2))
    bad = rng.normal(size=(100, 2))
    assert transrate(good, labels) > transrate(bad, labels) + 1


# -- the matrix metrics against Avalanche's definitions ---------------------------------------------------

R = [
    [0.90, None, None, None],
    [0.70, 0.95, None, None],
    [0.60, 0.80, 0.85, None],
    [0.65, 0.70, 0.75, 0.99],
]
N_TEST = [100, 50, 80, 20]


def avalanche_stream_metrics(R, n_test):
    """A transcription of Avalanche's bookkeeping (avalanche/evaluation/metrics/forgetting_bwt.py,
    accuracy.py): after training experience i, every experience k is evaluated; the accuracy on the
    experience just trained is its `initial` value, the others update `last` (reset before each eval
    phase); StreamForgetting is the mean of initial - last over keys that have both, after the final
    eval; StreamBWT = -StreamForgetting; StreamAccuracy pools every test example of the stream."""
    T = len(R)
    initial: dict[int, float] = {}
    forgetting = None
    for i in range(T):
        last: dict[int, float] = {}
        for k in range(T):
            acc = R[i][k]
            if acc is None:  # not trainable yet: Avalanche would evaluate it, but it has no initial
                continue
            if k == i:
                initial[k] = acc
            else:
                last[k] = acc
        both = [k for k in initial if k in last]
        forgetting = sum(initial[k] - last[k] for k in both) / len(both) if both else 0.0
    pooled = sum(R[-1][k] * n_test[k] for k in range(T)) / sum(n_test)
    return forgetting, -forgetting, pooled


def test_metrics_match_avalanche_on_a_hand_written_matrix():
    fgt, bwt, pooled = avalanche_stream_metrics(R, N_TEST)
    assert metrics.forgetting(R)["value"] == pytest.approx(fgt, abs=1e-12)
    assert metrics.bwt(R)["value"] == pytest.approx(bwt, abs=1e-12)
    acc = metrics.avg_accuracy(R, N_TEST)
    assert acc["pooled"] == pytest.approx(pooled, abs=1e-12)
    # and by hand: mean of the last row; forgetting (0.90-0.65 + 0.95-0.70 + 0.85-0.75) / 3
    assert acc["value"] == pytest.approx((0.65 + 0.70 + 0.75 + 0.99) / 4)
    assert fgt == pytest.approx((0.25 + 0.25 + 0.10) / 3)
    # Chaudhry et al.'s max-based forgetting uses the best earlier accuracy (here the same: no task improved)
    assert metrics.forgetting(R)["max_based"] == pytest.approx(fgt)
    improved = [[0.5, None], [0.8, 0.9]]
    assert metrics.bwt(improved)["value"] == pytest.approx(0.3)
    assert metrics.forgetting(improved)["value"] == pytest.approx(-0.3)


# -- native adapters --------------------------------------------------------------------------------------


def _net(hidden=(16, 16)):
    from expc.runtime.nets.build import build

    return build({"kind": "mlp", "hidden": list(hidden), "activation": "relu", "dropout": 0.0}, [1, 8, 8], 5,
                 (0.0, 1.0), seed=0)


def test_a_new_adapter_starts_as_the_identity_and_names_its_layers():
    body = NativeBody(_net()).eval()
    x = torch.rand(7, 1, 8, 8)
    before = body.features(x)
    body.add_adapter("a", 4, "hidden", seed=1)
    body.set_adapter("a")
    assert torch.equal(body.features(x), before)
    assert sorted(body.adapters["a"].keys()) == ["hidden_0", "hidden_1"]
    body.add_adapter("b", 4, "hidden.1", seed=1)
    assert sorted(body.adapters["b"].keys()) == ["hidden_1"]
    with torch.no_grad():
        body.adapters["a"]["hidden_1"].up.weight.fill_(0.1)
    assert not torch.equal(body.features(x), before)  # "a" is active
    body.set_adapter(None)
    assert torch.equal(body.features(x), before)
    with pytest.raises(NoLayer, match=r'matches at = "conv" \(its layers: hidden.0, hidden.1\)'):
        body.add_adapter("c", 4, "conv", seed=1)


def test_conv_adapters_on_a_cnn_backbone():
    from expc.runtime.nets.build import build

    net = build({"kind": "cnn", "channels": [4, 8], "kernel": 3, "pool": "max", "hidden": [16], "activation": "relu",
                 "dropout": 0.0}, [1, 8, 8], 5, (0.0, 1.0), seed=0)
    body = NativeBody(net).eval()
    x = torch.rand(3, 1, 8, 8)
    before = body.features(x)
    body.add_adapter("a", 2, "conv", seed=0)
    body.set_adapter("a")
    assert sorted(body.adapters["a"].keys()) == ["conv_0", "conv_1"] and torch.equal(body.features(x), before)
    assert body.adapters["a"]["conv_1"].down.weight.shape == (2, 8, 1, 1)
    with torch.no_grad():
        body.adapters["a"]["conv_0"].up.weight.fill_(0.5)
    assert body.features(x).shape == before.shape and not torch.equal(body.features(x), before)


# -- the methods on a tiny stream -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A backbone trained on digits 0-4 and a stream of 3 binary tasks over 5-9 (plain, permuted, inverted)."""
    root = tmp_path_factory.mktemp("cl")
    d = run(TS.digits, OpContext(root / "d"), normalize=True)
    src = run(TS.classes, OpContext(root / "src"), data=d, labels=[0, 1, 2, 3, 4])
    ctx = OpContext(root / "fit")
    backbone = FIT.fit.fn(REG.built(FIT.fit.params(model={"$op": "mlp", "hidden": [32, 32]}, data=src,
                                                   optimizer={"$op": "adam", "lr": 3e-3}, epochs=5), ctx), ctx)
    perm = run(TS.permute, OpContext(root / "p"), data=d, seed=1)
    inv = run(TS.invert, OpContext(root / "i"), data=d)
    parts = [run(TS.classes, OpContext(root / f"t{i}"), data=x, labels=lab)
             for i, (x, lab) in enumerate([(d, [5, 6]), (perm, [7, 8]), (inv, [5, 9])])]
    stream = run(CL.tasks, OpContext(root / "s"), tasks=parts, test=0.3, seed=0)
    return root, backbone, stream


def _run(tmp, backbone, stream, method: dict, **kw):
    ctx = OpContext(tmp)
    p = REG.built(CL.continual.params(stream=stream, model=backbone, method=method, epochs=kw.pop("epochs", 2),
                                      **kw), ctx)
    return CL.continual.fn(p, ctx), ctx


def test_the_stream_splits_each_task(small):
    _, _, s = small
    assert s.n_tasks == 3 and s.shape == [1, 8, 8] and s.classes == [2, 2, 2]
    Xtr, ytr, Xte, yte = s.task(1)
    assert len(Xtr) == s.n_train[1] and len(Xte) == s.n_test[1]
    assert abs(len(Xte) / (len(Xtr) + len(Xte)) - 0.3) < 0.02 and set(ytr.tolist()) == {0, 1} == set(yte.tolist())
    assert s.sources[1].startswith("classes(permute(")


def test_adapter_methods_keep_the_backbone_and_never_forget(small, tmp_path):
    root, backbone, stream = small
    from safetensors.torch import load_file

    method = {"$op": "adapters", "adapter": {"$op": "adapter", "bottleneck": 4}}
    out, ctx = _run(tmp_path / "a", backbone, stream, method)
    R = out["matrix"]
    assert [sum(x is not None for x in row) for row in R] == [1, 2, 3]
    # each task keeps its own adapter and head and the backbone is frozen: columns never change
    assert all(R[i][j] == R[j][j] for j in range(3) for i in range(j, 3))
    assert out["forgetting"] == 0.0 and out["n_params"]["n_adapters"] == 3
    state = load_file(str(ctx.out_dir / "state.safetensors"))
    assert not any(k.startswith("body.") for k in state)  # nothing of the backbone changed, nothing saved
    n = out["n_params"]
    assert n["value"] == n["backbone"] + n["adapters"] + n["heads"] and n["heads"] == 3 * (32 * 2 + 2)
    assert n["adapters"] == 3 * 2 * (32 * 4 + 4 + 4 * 32 + 32)
    assert (ctx.out_dir / "matrix.png").stat().st_size > 1000
    # the same key gives the same run
    again, _ = _run(tmp_path / "b", backbone, stream, method)
    assert again["matrix"] == R


def test_ada_keeps_at_most_pool_adapters_and_records_its_choices(small, tmp_path):
    _, backbone, stream = small
    out, _ = _run(tmp_path, backbone, stream, {"$op": "ada", "pool": 1, "score": "leep",
                                               "distill": {"$op": "distill", "steps": 20}})
    assert out["n_params"]["n_adapters"] == 1 and out["adapter_of"] == ["slot0"] * 3
    choices = out["choices"]
    assert [c["distilled"] for c in choices] == [False, True, True]
    assert all(len(c["scores"]) == 1 and c["scores"][0] <= 0 for c in choices[1:])  # LEEP is a log-likelihood
    out2, _ = _run(tmp_path / "t", backbone, stream, {"$op": "ada", "pool": 2, "score": "transrate",
                                                      "distill": {"$op": "distill", "steps": 20}})
    assert out2["n_params"]["n_adapters"] == 2 and len(out2["choices"][2]["scores"]) == 2


def test_sequential_ewc_and_replay_train_the_backbone(small, tmp_path):
    _, backbone, stream = small
    seq, _ = _run(tmp_path / "s", backbone, stream, {"$op": "sequential"}, epochs=3)
    ewc, _ = _run(tmp_path / "e", backbone, stream, {"$op": "ewc", "strength": 1000, "samples": 30}, epochs=3)
    rep, _ = _run(tmp_path / "r", backbone, stream, {"$op": "replay", "per_task": 10}, epochs=3)
    assert seq["n_params"]["n_adapters"] == 0 and seq["n_params"]["adapters"] == 0
    assert ewc["n_params"]["ewc_terms"] > 0 and rep["n_params"]["buffer_examples"] == 30
    assert seq["matrix"] != ewc["matrix"] and seq["matrix"] != rep["matrix"]
    assert all(r["inference_cost"] == 1 for r in (seq, ewc, rep))


@pytest.mark.parametrize("method", [
    {"$op": "ada", "pool": 1, "score": "transrate", "distill": {"$op": "distill", "steps": 10}},
    {"$op": "ewc", "samples": 10},
    {"$op": "replay", "per_task": 5},
], ids=["ada", "ewc", "replay"])
def test_an_interrupted_run_resumes_at_its_last_finished_task_with_the_same_result(small, tmp_path, method):
    from expc.runtime.api import Cancelled

    _, backbone, stream = small
    whole, _ = _run(tmp_path / "whole", backbone, stream, method)
    ctx = OpContext(tmp_path / "cut", cancel_at=3)  # checked before each task: stops before task 2
    p = REG.built(CL.continual.params(stream=stream, model=backbone, method=method, epochs=2), ctx)
    with pytest.raises(Cancelled):
        CL.continual.fn(p, ctx)
    again = OpContext(tmp_path / "cut")
    out = CL.continual.fn(REG.built(CL.continual.params(stream=stream, model=backbone, method=method, epochs=2),
                                    again), again)
    assert ("resumed_at_task", 2.0, 2) in again.logs and again.progressed == 3
    assert out["matrix"] == whole["matrix"] and out["n_params"] == whole["n_params"]
    assert out["choices"] == whole["choices"]


def test_shared_heads_predict_without_the_task_identity(small, tmp_path):
    _, backbone, stream = small
    out, _ = _run(tmp_path, backbone, stream, {"$op": "adapters"}, heads="shared")
    assert out["inference_cost"] == 3 and out["heads"] == "shared"
    task, _ = _run(tmp_path / "t", backbone, stream, {"$op": "adapters"})
    # choosing among 6 classes without the task is harder than among 2 with it
    assert sum(out["matrix"][-1]) < sum(task["matrix"][-1])


def test_the_result_operators(small, tmp_path):
    _, backbone, stream = small
    out, _ = _run(tmp_path, backbone, stream, {"$op": "sequential"}, epochs=1)
    assert CL.avg_accuracy.fn(CL.avg_accuracy.params(run=out))["value"] == pytest.approx(sum(out["matrix"][-1]) / 3)
    assert CL.forgetting.fn(CL.forgetting.params(run=out))["value"] == out["forgetting"]
    assert CL.bwt.fn(CL.bwt.params(run=out))["value"] == -out["forgetting"]
    assert CL.inference_cost.fn(CL.inference_cost.params(run=out))["value"] == 1
    assert C.n_params.fn(C.n_params.params(model=out)) == out["n_params"]
    shown = REG.types.show("continual", out)
    assert shown.headers == ("", "t0", "t1", "t2") and shown.rows[0][2] == "-" and shown.files == ("matrix.png",)


def test_leep_and_transrate_operators(small, tmp_path):
    root, backbone, stream = small
    d = run(TS.digits, OpContext(root / "d"), normalize=True)
    same = run(TS.classes, OpContext(tmp_path / "same"), data=d, labels=[0, 1, 2, 3, 4])
    other = run(TS.classes, OpContext(tmp_path / "other"), data=run(TS.permute, OpContext(tmp_path / "p"), data=d,
                                                                       seed=3), labels=[0, 1, 2, 3, 4])
    from expc.runtime.ops import transfer as TR

    l_same = run(TR.leep, OpContext(tmp_path / "l1"), model=backbone, data=same)["value"]
    l_other = run(TR.leep, OpContext(tmp_path / "l2"), model=backbone, data=other)["value"]
    r_same = run(TR.transrate, OpContext(tmp_path / "r1"), model=backbone, data=same)["value"]
    r_other = run(TR.transrate, OpContext(tmp_path / "r2"), model=backbone, data=other)["value"]
    # the backbone was trained on these very classes: both estimates rank its own domain first
    assert l_same > l_other and r_same > r_other


# -- bad input at run time (the check-time ones: tests/test_continual_lang.py) ----------------------------


def test_tasks_of_different_shapes_are_an_error_at_that_task(tmp_path):
    d = run(TS.digits, OpContext(tmp_path / "d"))
    iris = run(TS.iris, OpContext(tmp_path / "i"))
    with pytest.raises(OpError) as err:
        run(CL.tasks, OpContext(tmp_path / "s"), tasks=[d, d, iris])
    assert err.value.field == "tasks.2"
    assert err.value.message == ("task 2 (iris()) has examples of shape [4], task 0 (digits()) [1, 8, 8]: every task "
                                 "of a stream takes one input shape")


def test_a_stream_the_backbone_cannot_read(small, tmp_path):
    root, backbone, _ = small
    iris = run(TS.iris, OpContext(tmp_path / "i"))
    s = run(CL.tasks, OpContext(tmp_path / "s"), tasks=[iris, iris])
    with pytest.raises(OpError) as err:
        _run(tmp_path / "r", backbone, s, {"$op": "sequential"})
    assert err.value.field == "stream" and "takes examples of shape [1, 8, 8]" in err.value.message


def test_no_layer_matching_at_is_an_error_at_the_field(small, tmp_path):
    _, backbone, stream = small
    with pytest.raises(OpError) as err:
        _run(tmp_path, backbone, stream, {"$op": "ada", "adapter": {"$op": "adapter", "at": "conv"}})
    assert err.value.field == "method.adapter.at"
    assert err.value.message == 'no layer of the backbone matches at = "conv" (its layers: hidden.0, hidden.1)'
