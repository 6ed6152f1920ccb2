"""fit and the classifier metrics: learning digits, curves, determinism, resuming after a kill, NaN
losses, continuing a classifier, calibration and temperature scaling, and a whole program with the
merge algebra on classifiers."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _opctx import OpContext, run
from safetensors.torch import load_file, save_file

from expc.runtime.api import Cancelled, OpError
from expc.runtime.data.arrays import TensorData
from expc.runtime.nets.build import build
from expc.runtime.nets.load import config_of, save_classifier
from expc.runtime.nets.metrics import best_temperature, calibration
from expc.runtime.ops import classify as C
from expc.runtime.ops import data as D
from expc.runtime.ops import fit as FIT
from expc.runtime.ops import nets as N
from expc.runtime.ops import optim as O
from expc.runtime.ops import tensors as TS
from expc.runtime.registry import load_registry
from expc.runtime.train.fit import batch_loss

REG = load_registry()


def inl(op, **kw):
    return {"$op": op.name, **kw}


def fit(ctx, **kw):
    """Call `fit` as the executor does: params validated in JSON form, inline values built."""
    return FIT.fit.fn(REG.built(FIT.fit.params(**kw), ctx), ctx)


def weights(model) -> dict[str, torch.Tensor]:
    return load_file(str(model.path / "model.safetensors"))


def same(a, b) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    d = run(TS.digits, OpContext(root / "d"))
    parts = run(D.split, OpContext(root / "s"), data=d, test=0.2, seed=0)
    return parts["train"], parts["test"]


def test_fit_learns_digits_in_seconds(digits, tmp_path):
    train, test = digits
    ctx = OpContext(tmp_path / "fit", node="clf")
    started = time.perf_counter()
    clf = fit(ctx, model=inl(N.mlp, hidden=[64]), data=train, optimizer=inl(O.adam, lr=3e-3), epochs=12,
              validation=test, validate_every=92)
    seconds = time.perf_counter() - started
    acc = run(C.accuracy, OpContext(tmp_path / "acc"), model=clf, data=test)
    print(f"digits, mlp(hidden = [64]), 12 epochs ({ctx.progressed} steps): test accuracy {acc['value']:.4f} "
          f"in {seconds:.2f} s")
    assert acc["value"] > 0.90 and acc["n"] == test.n and len(acc["per_class"]) == 10
    assert seconds < 30  # a few seconds on a quiet machine; generous for a loaded one
    steps = [s for name, _, s in ctx.logs if name == "loss"]
    assert steps == list(range(10, 271, 10)) + [276]  # every 10 steps, and the last
    assert [s for name, _, s in ctx.logs if name == "val_accuracy"] == [92, 184, 276]
    curve = [v for name, v, _ in ctx.logs if name == "loss"]
    assert curve[-1] < 0.5 * curve[0]
    assert [v for name, v, _ in ctx.logs if name == "val_accuracy"][-1] == acc["value"]
    train_acc = [v for name, v, _ in ctx.logs if name == "accuracy"]
    assert train_acc[0] < 0.5 < train_acc[-1] <= 1.0
    config = json.loads((clf.path / "config.json").read_text())
    assert config["net"] == {"kind": "mlp", "hidden": [64], "activation": "relu", "dropout": 0.0}
    assert (config["input_shape"], config["classes"], config["input_range"]) == ([1, 8, 8], 10, [0.0, 16.0])
    assert config["training"]["optimizer"] == "adam(lr=0.003)" and clf.architecture == "ExpcMLP"
    assert ctx.progressed == 276


def test_cnn_learns_digits(digits, tmp_path):
    train, test = digits
    clf = fit(OpContext(tmp_path / "fit"), model=inl(N.cnn, channels=[8, 16], hidden=[32], dropout=0.1), data=train,
              optimizer=inl(O.adam, lr=3e-3), steps=300, schedule="cosine")
    acc = run(C.accuracy, OpContext(tmp_path / "acc"), model=clf, data=test)["value"]
    print(f"digits, cnn(channels = [8, 16], hidden = [32]), 300 steps: test accuracy {acc:.4f}")
    assert acc > 0.90


def test_fit_is_deterministic_and_the_seed_matters(digits, tmp_path):
    train, _ = digits
    kw = dict(model=inl(N.mlp, hidden=[16], dropout=0.2), data=train, steps=30, batch=32)
    a, b = fit(OpContext(tmp_path / "a"), **kw), fit(OpContext(tmp_path / "b"), **kw)
    c = fit(OpContext(tmp_path / "c"), **kw, seed=1)
    assert same(a, b) and not same(a, c)


def test_temperature_divides_the_logits_in_the_loss():
    logits, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    assert torch.equal(batch_loss(logits, y, "ce", 2.5), F.cross_entropy(logits / 2.5, y))
    mse = ((logits / 2.0 - F.one_hot(y, 4)) ** 2).sum(1).mean()
    assert torch.allclose(batch_loss(logits, y, "mse", 2.0), mse)


def test_mse_loss_learns(digits, tmp_path):
    train, test = digits
    clf = fit(OpContext(tmp_path / "fit"), model=inl(N.mlp), data=train, loss="mse", steps=200,
              optimizer=inl(O.adam, lr=3e-3))
    assert run(C.accuracy, OpContext(tmp_path / "acc"), model=clf, data=test)["value"] > 0.85


def test_fit_params_are_validated(digits):
    train, _ = digits
    base = dict(model=inl(N.mlp), data=train)
    for bad in (dict(), dict(steps=5, epochs=1), dict(steps=0), dict(steps=5, temperature=0), dict(steps=5, batch=0),
                dict(steps=5, loss="hinge"), dict(steps=5, optimizer=inl(N.mlp))):
        with pytest.raises(Exception):
            FIT.fit.params(**base, **bad)


def test_a_cnn_on_tabular_data_is_an_op_error(tmp_path):
    iris = run(TS.iris, OpContext(tmp_path / "iris"))
    with pytest.raises(OpError) as e:
        fit(OpContext(tmp_path / "fit"), model=inl(N.cnn), data=iris, steps=5)
    assert e.value.field == "model" and "cnn needs images" in e.value.message
    with pytest.raises(OpError, match=r"mlp\(outputs = 4\) but the data has 3 classes"):
        fit(OpContext(tmp_path / "fit2"), model=inl(N.mlp, outputs=4), data=iris, steps=5)


def test_continue_training_a_classifier(digits, tmp_path):
    train, test = digits
    first = fit(OpContext(tmp_path / "a"), model=inl(N.mlp, hidden=[32]), data=train, steps=60)
    more = fit(OpContext(tmp_path / "b"), model=first, data=train, steps=60)
    acc = [run(C.accuracy, OpContext(tmp_path / f"e{i}"), model=m, data=test)["value"]
           for i, m in enumerate((first, more))]
    assert acc[1] > acc[0]
    assert json.loads((more.path / "config.json").read_text())["net"]["hidden"] == [32]
    iris = run(TS.iris, OpContext(tmp_path / "iris"))
    with pytest.raises(OpError, match=r"takes examples of shape \[1, 8, 8\], the data has \[4\]"):
        fit(OpContext(tmp_path / "c"), model=first, data=iris, steps=5)


def test_adversarial_training_resists_the_attack(digits, tmp_path):
    from expc.runtime.ops import attacks as A

    train, test = digits
    kw = dict(model=inl(N.mlp, hidden=[32]), data=train, optimizer=inl(O.adam, lr=3e-3), steps=150)
    clean = fit(OpContext(tmp_path / "clean"), **kw)
    robust = fit(OpContext(tmp_path / "robust"), **kw, adversarial=inl(A.fgsm, eps=0.1))
    again = fit(OpContext(tmp_path / "again"), **kw, adversarial=inl(A.fgsm, eps=0.1))
    assert same(robust, again)  # the attack is seeded by (seed, step)
    assert json.loads((robust.path / "config.json").read_text())["training"]["adversarial"] == "fgsm(eps=0.1)"

    def asr(model, name):
        ctx = OpContext(tmp_path / name)
        p = REG.built(A.attack_success.params(model=model, data=test, attack=inl(A.fgsm, eps=0.1)), ctx)
        return A.attack_success.fn(p, ctx)["value"]

    # measured: 0.41 for the clean model, 0.24 for the adversarially trained one
    assert asr(robust, "a1") < asr(clean, "a0") - 0.08


# ---- checkpoints ---------------------------------------------------------------------------------------


def _fit(digits, ctx, **kw):
    train, _ = digits
    args = dict(model=inl(N.mlp, hidden=[32], dropout=0.1), data=train, steps=60, batch=32, checkpoint_every=20,
                optimizer=inl(O.sgd, lr=0.1, momentum=0.9))
    return fit(ctx, **{**args, **kw})


class Crash(Exception):
    pass


def test_resume_after_crash_equals_uninterrupted(digits, tmp_path):
    full = _fit(digits, OpContext(tmp_path / "full"))
    ctx = OpContext(tmp_path / "crashy")

    def crash_at_50(name, value, step=None):
        ctx.logs.append((name, value, step))
        if step == 50:
            raise Crash()  # an abrupt failure (a kill): no checkpoint at 50, the last one is at 40

    ctx.log = crash_at_50
    with pytest.raises(Crash):
        _fit(digits, ctx)
    index = json.loads((ctx.work_dir / "checkpoint.json").read_text())
    assert index["step"] == 40
    assert sorted(p.name for p in ctx.work_dir.iterdir()) == ["checkpoint.json", "ckpt-40.safetensors"]
    again = OpContext(tmp_path / "crashy")  # same work dir, fresh state
    resumed = _fit(digits, again)
    assert [s for name, _, s in again.logs if name == "loss"] == [50, 60]
    assert same(resumed, full)


def test_resume_after_cancel_equals_uninterrupted(digits, tmp_path):
    spec = inl(O.fop, optimizer=inl(O.adam, lr=3e-3), hyper_lr=1e-3)
    full = _fit(digits, OpContext(tmp_path / "full"), optimizer=spec, seed=3)
    ctx = OpContext(tmp_path / "c", cancel_at=3)  # cancelled at the check after step 30
    with pytest.raises(Cancelled):
        _fit(digits, ctx, optimizer=spec, seed=3)
    assert json.loads((ctx.work_dir / "checkpoint.json").read_text())["step"] == 30
    again = OpContext(tmp_path / "c")
    resumed = _fit(digits, again, optimizer=spec, seed=3)
    assert again.progressed == 60 and [s for _, _, s in again.logs][0] == 40
    assert same(resumed, full)


def test_nan_loss_names_node_and_step_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    ctx = OpContext(tmp_path / "nan", node="clf_boom")
    with pytest.raises(OpError) as e:
        _fit(digits, ctx, loss="mse", optimizer=inl(O.sgd, lr=2.0, momentum=0.9), steps=200, checkpoint_every=10)
    msg = e.value.message
    assert msg.startswith("clf_boom: ") and e.value.field == "optimizer"
    step = int(msg.split(" step ")[1].split()[0])
    assert "the last good checkpoint is kept" in msg and step > 10
    index = json.loads((ctx.work_dir / "checkpoint.json").read_text())
    assert index["step"] < step
    stored = load_file(str(ctx.work_dir / index["tensors"]))
    assert all(torch.isfinite(v).all() for k, v in stored.items() if k.startswith("model."))
    assert not list(ctx.out_dir.iterdir())  # no classifier written


# ---- metrics -------------------------------------------------------------------------------------------


def test_calibration_by_hand():
    logits = torch.log(torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]], dtype=torch.float64))
    y = torch.tensor([0, 1, 1, 0])
    m = calibration(logits, y, bins=2)  # bins (0, 0.5], (0.5, 1]: every confidence is in the second
    conf = torch.tensor([0.9, 0.6, 0.7, 0.8], dtype=torch.float64)
    assert math.isclose(m["ece"], abs(0.5 - float(conf.mean())), abs_tol=1e-12)
    assert m["reliability"]["count"] == [0, 4] and m["accuracy"] == 0.5
    assert math.isclose(m["nll"], -float(np.mean(np.log([0.9, 0.4, 0.7, 0.2]))), abs_tol=1e-12)
    five = calibration(logits, y, bins=5)  # (0.4, 0.6]: 0.6 (wrong); (0.6, 0.8]: 0.7 (right), 0.8 (wrong); 0.9 right
    assert five["reliability"]["count"] == [0, 0, 1, 2, 1]
    assert math.isclose(five["ece"], (abs(0 - 0.6) + 2 * abs(0.5 - 0.75) + abs(1 - 0.9)) / 4, abs_tol=1e-12)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A classifier and data whose labels are drawn from its own softmax: perfectly calibrated (T = 1)."""
    root = tmp_path_factory.mktemp("cal")
    arch = N.mlp.params(hidden=[8]).arch(N.CLASSIFIER_DEFAULTS)
    net = build(arch, [4], 5, (-3.0, 3.0), seed=0).eval()
    with torch.no_grad():
        net.head.weight.mul_(6.0)  # confident enough that the temperature is well determined
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(20_000, 4, generator=gen)
    with torch.no_grad():
        y = torch.multinomial(torch.softmax(net(X), 1), 1, generator=gen)[:, 0]
    data = TensorData.write(root / "data", X.numpy(), y.numpy(), "sampled from the model", classes=5, lo=-3, hi=3)
    model = save_classifier(net, config_of(arch, [4], 5, (-3.0, 3.0)), root / "model")
    return model, data, root


def _scaled(model, s: float, out):
    """The classifier with every logit multiplied by s (head.* scaled: what where("head.*", s * m, m) does)."""
    out.mkdir(parents=True)
    tensors = {k: v * s if k.startswith("head.") else v for k, v in weights(model).items()}
    save_file(tensors, str(out / "model.safetensors"))
    (out / "config.json").write_text((model.path / "config.json").read_text())
    return type(model)(path=out)


@pytest.mark.parametrize("s", [1.0, 4.0, 0.25])
def test_calibrate_finds_the_logit_scale(calibrated, tmp_path, s):
    model, data, root = calibrated
    m = run(C.calibrate, OpContext(tmp_path / "t"), model=_scaled(model, s, tmp_path / "m"), data=data)
    # logits multiplied by s are calibrated again when divided by T = s (the correcting factor is 1/s)
    assert m["value"] == pytest.approx(s, rel=0.05) and m["temperature"] == m["value"]
    assert m["nll_after"] <= m["nll_before"] + 1e-12
    if s != 1.0:
        assert m["ece_after"] < m["ece_before"]


def test_best_temperature_is_the_nll_minimum():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(500, 3, generator=gen, dtype=torch.float64) * 3
    y = torch.multinomial(torch.softmax(logits / 2, 1), 1, generator=gen)[:, 0]
    t, at_bound = best_temperature(logits, y)

    def nll(temp):
        return float(F.cross_entropy(logits / temp, y))

    assert not at_bound and 1.5 < t < 2.5 and nll(t) <= min(nll(t * 1.001), nll(t / 1.001))
    wrong = logits.argmin(1)  # the model is always wrong: as hot (uniform) as allowed
    assert best_temperature(logits, wrong) == (1e4, True)
    perfect = torch.tensor([[5.0, -5.0], [-5.0, 5.0]], dtype=torch.float64)
    assert best_temperature(perfect, torch.tensor([0, 1])) == (1e-4, True)  # separable: as cold as allowed


def test_accuracy_checks_the_data(calibrated, tmp_path):
    model, _, _ = calibrated
    d = run(TS.digits, OpContext(tmp_path / "d"))
    with pytest.raises(OpError, match=r"takes examples of shape \[4\], the data has \[1, 8, 8\]"):
        run(C.accuracy, OpContext(tmp_path / "a"), model=model, data=d)


# ---- a whole program --------------------------------------------------------------------------------------

PROGRAM = """\
data d = split(digits(), test = 0.2)
train clf = fit(mlp(hidden = [32]), d.train, optimizer = adam(lr = 3e-3), steps = 150)
merge hot = where("head.*", 1e4 * clf, clf)
merge avg = (clf + clf) / 2
eval acc = accuracy(clf, d.test)
eval acc_hot = accuracy(hot, d.test)
eval t = calibrate(clf, d.test)
eval t_hot = calibrate(hot, d.test)
eval ece = calibration(avg, d.test, bins = 10)
eval size = n_params(avg)
"""


def test_a_program_with_classifiers_and_the_merge_algebra(tmp_path):
    import expc
    from expc.interpreter.compiler import compile

    (tmp_path / "main.exp").write_text(PROGRAM)
    nodes = compile(tmp_path / "main.exp").program.nodes
    assert nodes["clf"].type == "classifier" and nodes["avg"].type == "classifier"
    r = expc.run(tmp_path / "main.exp", cache=tmp_path / ".expc")
    assert r.metric("acc") > 0.85 and r.metric("acc_hot") == r.metric("acc")  # scaling logits keeps the argmax
    assert r.metric("t_hot") == pytest.approx(1e4 * r.metric("t"), rel=1e-6)
    assert r.metric("size") == 64 * 32 + 32 + 32 * 10 + 10 and r["size"].data["head"] == 330
    assert 0 <= r.metric("ece") < 0.2
