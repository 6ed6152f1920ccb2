"""Adversarial attacks and attack_success: every attack runs within its budget on a small trained
classifier; torchattacks' FGSM and PGD against reference implementations written here; the ASR's skip
rule; the IOR diagnostics (zero input gradients at logits x1e4, flat probabilities at x1e-10) and the
attacker's temperature that undoes them; the check-time diagnostics of eps and temperature; the
OpErrors of what only a run can tell."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from _opctx import OpContext, run
from safetensors.torch import load_file, save_file

from expc.interpreter.compiler import compile
from expc.runtime.api import OpError
from expc.runtime.attacks.build import AttackView, Perturber, build, margin, perturb
from expc.runtime.attacks.success import _flat as flat_rows
from expc.runtime.attacks.success import diagnostics as ior_diagnostics
from expc.runtime.attacks.success import temperature_of
from expc.runtime.data.arrays import TensorData
from expc.runtime.nets.load import load_classifier
from expc.runtime.ops import attacks as A
from expc.runtime.ops import data as D
from expc.runtime.ops import fit as FIT
from expc.runtime.ops import nets as N
from expc.runtime.ops import optim as O
from expc.runtime.ops import tensors as TS
from expc.runtime.registry import load_registry
from expc.spec.diagnostics import CompileError

REG = load_registry()


def inl(op, **kw):
    return {"$op": op.name, **kw}


def call(op, ctx, **kw):
    """Call an operator as the executor does: params validated in JSON form, inline values built."""
    return op.fn(REG.built(op.params(**kw), ctx), ctx)


def scaled(model, s: float, out) -> object:
    """The classifier with its head (every logit) multiplied by s: what where("head.*", s * clf, clf) gives."""
    from expc.runtime.values import ModelDir

    out.mkdir(parents=True)
    weights = load_file(str(model.path / "model.safetensors"))
    tensors = {k: (v * s if k.startswith("head.") else v) for k, v in weights.items()}
    save_file(tensors, str(out / "model.safetensors"))
    (out / "config.json").write_text((model.path / "config.json").read_text())
    return ModelDir(path=out, architecture="ExpcMLP", dtype="float32",
                    n_params=sum(t.numel() for t in tensors.values()))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An MLP on digits in [0, 1] (~90% test accuracy in a second), its x1e4 and x1e-10 versions, the test set."""
    root = tmp_path_factory.mktemp("attacks")
    d = run(TS.digits, OpContext(root / "d"), normalize=True)
    parts = run(D.split, OpContext(root / "s"), data=d, test=0.2, seed=0)
    clf = call(FIT.fit, OpContext(root / "fit"), model=inl(N.mlp, hidden=[64]), data=parts["train"],
               optimizer=inl(O.adam, lr=3e-3), epochs=6)
    return {"clf": clf, "hot": scaled(clf, 1e4, root / "hot"), "cold": scaled(clf, 1e-10, root / "cold"),
            "test": parts["test"], "train": parts["train"]}


def asr(trained, tmp_path, model="clf", **kw):
    return call(A.attack_success, OpContext(tmp_path / f"asr{len(list(tmp_path.iterdir()))}"),
                model=trained[model], data=trained["test"], **kw)


# ---- every attack ---------------------------------------------------------------------------------------

ATTACKS = {
    "fgsm": inl(A.fgsm, eps=0.1),
    "pgd": inl(A.pgd, eps=0.1, steps=5),
    "pgd-margin-restarts": inl(A.pgd, eps=0.1, steps=3, loss="margin", restarts=2),
    "square": inl(A.square, eps=0.1, queries=20),
    "autoattack": inl(A.autoattack, eps=0.3),  # a large eps: APGD fools nearly all, the ensemble's rest is quick
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_attack_runs_within_its_budget_and_is_deterministic(trained, tmp_path, name):
    n = 16 if name == "autoattack" else 120
    eps = ATTACKS[name]["eps"]
    r = asr(trained, tmp_path, attack=ATTACKS[name], n=n)
    again = asr(trained, tmp_path, attack=ATTACKS[name], n=n)
    assert r == again
    assert r["n"] == n and 0 < r["correct"] <= n and 0 <= r["flipped"] <= r["correct"]
    assert r["value"] == r["asr"] == r["flipped"] / r["correct"]
    assert r["robust_accuracy"] == pytest.approx((r["correct"] - r["flipped"]) / n)
    assert r["clean_accuracy"] == pytest.approx(r["correct"] / n)
    assert 0 < r["max_perturbation"] <= eps + 1e-6
    assert r["attack"].startswith(f"{name.split('-')[0]}(eps={eps}")
    assert r["flipped"] > 0  # eps = 0.1 of the range fools a small MLP on some digits


def test_eps_is_a_fraction_of_the_data_range(trained, tmp_path):
    """On raw digits (pixels in [0, 16]) eps = 0.1 moves a pixel by at most 1.6."""
    d = run(TS.digits, OpContext(tmp_path / "raw"))
    clf = call(FIT.fit, OpContext(tmp_path / "fit"), model=inl(N.mlp, hidden=[16]), data=d,
               optimizer=inl(O.adam, lr=3e-3), steps=60)
    net, _ = load_classifier(clf)
    X, y = (torch.from_numpy(a) for a in d.load())
    x, y = X[:50], y[:50]
    spec = A.fgsm.params(eps=0.1)
    adv = perturb(net, x, y, spec, d.lo, d.hi, classes=10)
    assert (d.lo, d.hi) == (0.0, 16.0)
    assert float((adv - x).abs().max()) == pytest.approx(1.6, rel=1e-5)
    assert float(adv.min()) >= 0 and float(adv.max()) <= 16
    r = call(A.attack_success, OpContext(tmp_path / "a"), model=clf, data=d, attack=inl(A.fgsm, eps=0.1), n=50)
    assert r["eps_data"] == pytest.approx(1.6) and r["max_perturbation"] == pytest.approx(0.1, rel=1e-5)


def test_perturb_leaves_the_global_random_state_alone(trained):
    net, _ = load_classifier(trained["clf"])
    X, y = (torch.from_numpy(a) for a in trained["test"].load())
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = perturb(net, X[:32], y[:32], A.pgd.params(eps=0.1, steps=3), 0.0, 1.0, classes=10, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = perturb(net, X[:32], y[:32], A.pgd.params(eps=0.1, steps=3), 0.0, 1.0, classes=10, seed=5)
    c = perturb(net, X[:32], y[:32], A.pgd.params(eps=0.1, steps=3), 0.0, 1.0, classes=10, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not net.training  # torchattacks restores the mode it found


# ---- torchattacks against references ----------------------------------------------------------------


def ref_fgsm(model, u, y, eps):
    u = u.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(u), y), u)
    return (u + eps * g.sign()).clamp(0, 1).detach()


def ref_pgd(model, u, y, eps, alpha, steps, start, loss="ce"):
    """Madry et al.'s PGD: signed steps on the loss, projected on the eps-ball and [0, 1]; `start` is the
    initial offset (uniform in the ball for a random start)."""
    x = (u + start).clamp(0, 1)
    for _ in range(steps):
        x = x.clone().requires_grad_(True)
        z = model(x)
        cost = F.cross_entropy(z, y) if loss == "ce" else (
            (z.masked_fill(F.one_hot(y, 10).bool(), -math.inf).amax(1) - z.gather(1, y[:, None])[:, 0]).sum())
        (g,) = torch.autograd.grad(cost, x)
        x = x.detach() + alpha * g.sign()
        x = torch.min(torch.max(x, u - eps), u + eps).clamp(0, 1)
    return x.detach()


@pytest.fixture(scope="module")
def batch(trained):
    net, _ = load_classifier(trained["clf"])
    X, y = (torch.from_numpy(a) for a in trained["test"].load())
    view = AttackView(net, 0.0, 1.0, 1.0, [1, 8, 8])
    return view, X[:64], y[:64]


def close(a, b) -> bool:
    """The same perturbation: equal but for float rounding (a sign flip of a near-zero gradient would show)."""
    return float((a - b).abs().max()) <= 1e-5


def test_torchattacks_fgsm_matches_the_reference(batch):
    view, u, y = batch
    ours = build(A.fgsm.params(eps=0.1), view, 10, 0)(u, y)
    ref = ref_fgsm(view, u, y, 0.1)
    assert close(ours, ref) and float((ours - u).abs().max()) == pytest.approx(0.1)


@pytest.mark.parametrize("loss", ["ce", "margin"])
@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_matches_the_reference(batch, loss, random_start):
    view, u, y = batch
    spec = A.pgd.params(eps=0.1, steps=7, loss=loss, random_start=random_start)
    torch.manual_seed(3)
    ours = build(spec, view, 10, 0)(u, y)
    torch.manual_seed(3)  # torchattacks draws the start from torch's generator: the same draw
    start = torch.empty_like(u).uniform_(-0.1, 0.1) if random_start else torch.zeros_like(u)
    ref = ref_pgd(view, u, y, 0.1, spec.step_size, 7, start, loss)
    assert spec.step_size == pytest.approx(2.5 * 0.1 / 7)
    assert close(ours, ref)
    assert float((ours - u).abs().max()) <= 0.1 + 1e-6 and not torch.equal(ours, u)


def test_margin_is_the_largest_other_logit_minus_the_true_one():
    z = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, 0.0]])
    assert margin(z, torch.tensor([1, 0])).tolist() == [-1.0, -4.0]
    assert margin(z, torch.tensor([0, 2])).tolist() == [2.0, 5.0]


# ---- attack success: the skip rule -------------------------------------------------------------------


def test_misclassified_examples_do_not_count(trained, tmp_path):
    """Relabel half of the test set wrongly: those examples are misclassified, are not attacked, and
    the ASR is that of the correctly classified ones alone (FGSM is deterministic per example)."""
    test = trained["test"]
    X, y = test.load()
    net, _ = load_classifier(trained["clf"])
    with torch.no_grad():
        pred = net(torch.from_numpy(X)).argmax(1).numpy()
    wrong = y.copy()
    wrong[::2] = (pred[::2] + 1) % 10  # surely not the prediction
    mixed = TensorData.write(tmp_path / "mixed", X, wrong, "mixed", classes=10, lo=0.0, hi=1.0)
    right = pred == wrong
    only = TensorData.write(tmp_path / "only", X[right], wrong[right], "only", classes=10, lo=0.0, hi=1.0)
    fgsm = inl(A.fgsm, eps=0.1)
    a = call(A.attack_success, OpContext(tmp_path / "a"), model=trained["clf"], data=mixed, attack=fgsm)
    b = call(A.attack_success, OpContext(tmp_path / "b"), model=trained["clf"], data=only, attack=fgsm)
    assert a["correct"] == int(right.sum()) == b["correct"] == b["n"] and a["n"] == len(y)
    assert a["flipped"] == b["flipped"] and a["value"] == b["value"]
    assert b["clean_accuracy"] == 1.0 and a["clean_accuracy"] < 0.5
    assert a["robust_accuracy"] == pytest.approx((a["correct"] - a["flipped"]) / a["n"])


# ---- the illusion of robustness ----------------------------------------------------------------------


def test_zero_gradients_at_logits_times_1e4_and_not_at_1(trained, tmp_path):
    pgd = inl(A.pgd, eps=0.15, steps=10)
    clean = asr(trained, tmp_path, attack=pgd)
    hot = asr(trained, tmp_path, "hot", attack=pgd)
    assert clean["zero_grad_share"] == 0.0 and clean["flat_share"] == 0.0
    assert hot["zero_grad_share"] >= 0.95  # measured: 1.0
    assert hot["clean_accuracy"] == clean["clean_accuracy"]  # scaling keeps every prediction
    print(f"PGD ASR: x1 {clean['value']:.3f}, x1e4 {hot['value']:.3f} (zero gradients {hot['zero_grad_share']:.3f})")
    assert clean["value"] > 0.5 and hot["value"] < 0.2 * clean["value"]


def test_the_attackers_temperature_restores_pgd(trained, tmp_path):
    pgd = inl(A.pgd, eps=0.15, steps=10)
    blind = asr(trained, tmp_path, "hot", attack=pgd)
    seeing = asr(trained, tmp_path, "hot", attack=pgd, temperature=1e4)
    clean = asr(trained, tmp_path, attack=pgd)
    assert seeing["temperature"] == 1e4 and seeing["zero_grad_share"] == 0.0
    assert seeing["value"] >= 5 * blind["value"] and seeing["value"] > 0.5
    # logits x1e4 / 1e4 are the clean logits up to float32 rounding: the same attack
    assert seeing["value"] == pytest.approx(clean["value"], abs=0.02)


def test_flat_probabilities_blind_square_ce_but_not_the_margin(trained, tmp_path):
    sq = inl(A.square, eps=0.15, queries=100)
    clean = asr(trained, tmp_path, attack=sq, n=150)
    cold = asr(trained, tmp_path, "cold", attack=sq, n=150)
    seeing = asr(trained, tmp_path, "cold", attack=sq, n=150, temperature=1e-10)
    by_margin = asr(trained, tmp_path, "cold", attack=inl(A.square, eps=0.15, queries=100, loss="margin"), n=150)
    print(f"square ce ASR: x1 {clean['value']:.3f}, x1e-10 {cold['value']:.3f}, with T = 1e-10 "
          f"{seeing['value']:.3f}; margin at x1e-10 {by_margin['value']:.3f}")
    assert cold["flat_share"] == 1.0 and cold["zero_grad_share"] == 0.0 and seeing["flat_share"] == 0.0
    assert seeing["value"] >= 2 * cold["value"] and by_margin["value"] >= 2 * cold["value"]


def reference_diagnostics(net, x, y, temperature):
    """The IOR diagnostics as defined, element by element: every input-gradient entry of the summed
    cross-entropy of logits / temperature is 0, every class probability equals the first."""
    xg = x.clone().requires_grad_(True)
    z = net(xg) / temperature
    (g,) = torch.autograd.grad(F.cross_entropy(z, y, reduction="sum"), xg)
    p = torch.softmax(z.detach(), 1)
    return (g.flatten(1) == 0).all(1), (p == p[:, :1]).all(1)


@pytest.mark.parametrize("model,temperature", [("clf", 1.0), ("hot", 1.0), ("clf", 1e-3), ("hot", 1e4),
                                               ("cold", 1.0), ("clf", 1e6), ("clf", 1e8), ("cold", 1e-10)])
def test_the_diagnostics_are_their_definition(trained, model, temperature):
    """success() computes the shares with cheaper reductions and skips the softmax where it cannot be
    flat: the same booleans as the definition, on every example."""
    net, _ = load_classifier(trained[model])
    X, y = (torch.from_numpy(a) for a in trained["test"].load())
    right, zero, flat = ior_diagnostics(net, X, y, temperature)
    ref_zero, ref_flat = reference_diagnostics(net, X, y, temperature)
    assert torch.equal(zero, ref_zero) and torch.equal(flat, ref_flat)
    assert torch.equal(right, net(X).argmax(1) == y)


def test_the_flat_test_matches_the_softmax_on_edge_cases():
    torch.manual_seed(0)
    for scale in (1.0, 1e-3, 1e-4, 1e-6, 1e-7, 3e-8, 1e-8, 1e-10, 0.0):
        z = torch.randn(4000, 10) * scale
        z[0] = math.nan
        z[1, 3] = math.inf
        z[2] = math.inf
        z[3, 2] = -math.inf
        z[4] = 5.0
        p = torch.softmax(z, 1)
        assert torch.equal(flat_rows(z), (p == p[:, :1]).all(1)), scale
    mixed = flat_rows(torch.randn(4000, 10) * 3e-8)
    assert 0 < int(mixed.sum()) < 4000  # the range where both occur is covered


def test_an_attack_on_the_unit_range_calls_the_classifier_itself(trained):
    """Data in [0, 1] at temperature 1: no view, no mapping; the same perturbation as through the view."""
    net, _ = load_classifier(trained["clf"])
    X, y = (torch.from_numpy(a) for a in trained["test"].load())
    spec = A.pgd.params(eps=0.1, steps=4)
    direct = Perturber(net, spec, 0.0, 1.0, [1, 8, 8], classes=10)
    assert direct.view is net
    viewed = Perturber(net, spec, 0.0, 1.0, [1, 8, 8], classes=10)
    viewed.view = AttackView(net, 0.0, 1.0, 1.0, [1, 8, 8])
    viewed.attack = build(spec, viewed.view, 10, 0)
    assert torch.equal(direct(X[:64], y[:64], seed=3), viewed(X[:64], y[:64], seed=3))


def test_temperature_is_a_number_or_a_metric():
    assert temperature_of(2.5) == 2.5
    assert temperature_of({"value": 4958.0, "nll_before": 1.0}) == 4958.0
    for bad in (0, -1.0, float("nan"), {"value": 0.0}, {"nll": 1.0}, "x"):
        with pytest.raises(OpError) as e:
            temperature_of(bad)
        assert e.value.field == "temperature"


# ---- what only a run can tell ------------------------------------------------------------------------


def test_square_and_autoattack_need_images(tmp_path):
    d = run(TS.iris, OpContext(tmp_path / "iris"), normalize=True)
    clf = call(FIT.fit, OpContext(tmp_path / "fit"), model=inl(N.mlp, hidden=[8]), data=d, steps=20)
    for attack, message in ((inl(A.square, eps=0.1, queries=5), r"square\(...\) needs images"),
                            (inl(A.autoattack, eps=0.1), r"autoattack\(...\) needs images")):
        with pytest.raises(OpError, match=message) as e:
            call(A.attack_success, OpContext(tmp_path / "a"), model=clf, data=d, attack=attack)
        assert e.value.field == "attack"
    r = call(A.attack_success, OpContext(tmp_path / "p"), model=clf, data=d, attack=inl(A.pgd, eps=0.1, steps=3))
    assert r["n"] == 150  # gradient attacks take any shape


def test_an_empty_range_and_a_wrong_shape_are_op_errors(trained, tmp_path):
    net, _ = load_classifier(trained["clf"])
    x, y = torch.ones(4, 1, 8, 8), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(OpError, match=r"range \[1, 1\] is empty") as e:
        perturb(net, x, y, A.fgsm.params(eps=0.1), 1.0, 1.0, classes=10)
    assert e.value.field == "data"
    d = run(TS.iris, OpContext(tmp_path / "iris"))
    with pytest.raises(OpError, match=r"takes examples of shape \[1, 8, 8\], the data has \[4\]"):
        asr({**trained, "test": d}, tmp_path, attack=inl(A.fgsm, eps=0.1))


# ---- check time ----------------------------------------------------------------------------------------

HEAD = """\
data d = split(digits(), test = 0.2)
train clf = fit(mlp(hidden = [8]), d.train, steps = 5)
eval t_cal = calibrate(clf, d.train)
"""


def diagnostics(tmp_path, body: str):
    f = tmp_path / "main.exp"
    f.write_text(HEAD + body)
    with pytest.raises(CompileError) as e:
        compile(f)
    return [(d.code, d.span.line, d.span.col, d.message) for d in e.value.diagnostics]


def test_eps_outside_the_data_range_is_located(tmp_path):
    (d,) = diagnostics(tmp_path, "eval a = attack_success(clf, d.test, attack = pgd(eps = 2))\n")
    assert d == ("E401", 4, 57, "invalid value for 'eps' of pgd(): eps is a fraction of the data's feature range "
                 "[lo, hi]: at most 1, the whole range (got 2)")
    (d,) = diagnostics(tmp_path, "param e ~ uniform(0.1, 2, default = 0.5)\n"
                                 "eval a = attack_success(clf, d.test, attack = fgsm(eps = e))\n")
    assert d[:3] == ("E401", 5, 58) and "the search range of 'e' [0.1, 2]" in d[3]
    (d,) = diagnostics(tmp_path, "train r = fit(mlp(), d.train, steps = 5, adversarial = pgd(eps = 1.5))\n")
    assert d[:3] == ("E401", 4, 66) and "at most 1" in d[3]


def test_bad_temperatures_and_attacks_are_located(tmp_path):
    (d,) = diagnostics(tmp_path, "eval a = attack_success(clf, d.test, attack = fgsm(eps = 0.1), temperature = 0)\n")
    assert d == ("E401", 4, 78, "invalid value for 'temperature' of attack_success(): the temperature must be a "
                 "positive number (got 0)")
    (d,) = diagnostics(tmp_path, "eval a = attack_success(clf, d.test, attack = adam(lr = 1))\n")
    assert d == ("E301", 4, 47, "argument 'attack' of attack_success() expects attack, got optimizer")
    (d,) = diagnostics(tmp_path, "eval a = attack_success(clf, d.test, attack = fgsm(eps = 0.1), temperature = clf)\n")
    assert d[:3] == ("E301", 4, 78) and "expects metric or number, got classifier" in d[3]
    (d,) = diagnostics(tmp_path, "eval a = attack_success(clf, d.test, attack = pgd(eps = 0.1, restarts = 2, "
                                 "random_start = false))\n")
    assert d[0] == "E401" and "restarts > 1 needs random_start = true" in d[3]


def test_a_calibrated_temperature_is_accepted_at_check_time(tmp_path):
    f = tmp_path / "main.exp"
    f.write_text(HEAD + "eval a = attack_success(clf, d.test, attack = fgsm(eps = 0.1), temperature = t_cal)\n"
                        "eval b = attack_success(clf, d.test, attack = fgsm(eps = 0.1), temperature = t_cal.value)\n"
                        "param t ~ loguniform(1e-6, 1e6, default = 1)\n"
                        "eval c = attack_success(clf, d.test, attack = fgsm(eps = 0.1), temperature = t)\n")
    nodes = compile(f).program.nodes
    assert nodes["a"].type == "metric" and "t_cal" in json.dumps(nodes["a"].model_dump(mode="json"))


def test_diagnose_false_skips_the_ior_diagnostics_and_changes_nothing_else():
    """`diagnose = false` leaves out the zero-gradient and flat shares (none, not a made-up 0) and
    gives the same success rate, flipped images and accuracies as with them."""
    import torch

    from expc.runtime.attacks.success import success
    from expc.runtime.nets.build import build
    from expc.runtime.ops.attacks import PgdParams

    torch.manual_seed(0)
    X = torch.rand(64, 8)
    net = build({"kind": "mlp", "hidden": [16], "activation": "relu", "dropout": 0.0}, [8], 3, (0.0, 1.0), seed=0)
    y = net(X).argmax(1).detach()
    spec = PgdParams(eps=0.2, steps=3)
    full = success(net, X, y, spec, 0.0, 1.0, classes=3, batch=32)
    plain = success(net, X, y, spec, 0.0, 1.0, classes=3, batch=32, diagnose=False)
    assert plain["zero_grad_share"] is None and plain["flat_share"] is None
    assert full["zero_grad_share"] is not None
    for k in ("asr", "flipped", "correct", "robust_accuracy", "clean_accuracy"):
        assert plain[k] == full[k]
