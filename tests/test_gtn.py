"""The shared inner loop (expc.runtime.meta.inner) against torch.optim.SGD and finite differences, GTN
meta-training (determinism, resume after a kill, what a teacher stores), `teach` (a classifier that
`accuracy` reads), the `sigmoid(slope, offset)` activation value, and the family's diagnostics."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from _opctx import OpContext, run
from conftest import compile_errors
from safetensors.torch import load_file

from expc.interpreter.compiler import compile
from expc.runtime.api import OpError
from expc.runtime.meta.inner import forward, initial, unroll
from expc.runtime.ops import classify as C
from expc.runtime.ops import data as D
from expc.runtime.ops import meta as META
from expc.runtime.ops import tensors as TS
from expc.runtime.registry import load_registry

REG = load_registry()


def call(op, ctx, **kw):
    """Call an operator as the executor does: params validated in JSON form, inline values built."""
    return op.fn(REG.built(op.params(**kw), ctx), ctx)


# ---- the inner loop ------------------------------------------------------------------------------------


def _tiny(dtype=torch.float64):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).to(dtype)
    x = torch.randn(5, 3, dtype=dtype)
    y = torch.tensor([0, 1, 1, 0, 1])
    xr, yr = torch.randn(7, 3, dtype=dtype), torch.tensor([1, 0, 0, 1, 1, 0, 1])
    return net, x, y, xr, yr


def test_plain_unrolled_steps_are_torch_sgd_with_momentum():
    net, x, y, _, _ = _tiny()
    final = unroll(net, initial(net), lambda t: (x * (t + 1), y), F.cross_entropy, 5, 0.3, 0.7, differentiable=False)
    opt = torch.optim.SGD(net.parameters(), lr=0.3, momentum=0.7)
    for t in range(5):
        opt.zero_grad()
        F.cross_entropy(net(x * (t + 1)), y).backward()
        opt.step()
    for name, p in net.named_parameters():
        assert torch.allclose(final[name], p, atol=1e-12, rtol=0)


def test_the_hypergradient_through_the_unrolled_steps_matches_finite_differences():
    net, x0, y, xr, yr = _tiny()
    init = {k: v.detach() for k, v in initial(net).items()}

    def outer(x, lr, momentum):
        params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
        final = unroll(net, params, lambda t: (x + 0.1 * t, y), F.cross_entropy, 4, lr, momentum)
        return F.cross_entropy(forward(net, final, xr), yr)

    def value(*args) -> float:  # the outer loss as a number, for finite differences
        return float(outer(*args).detach())

    x = x0.clone().requires_grad_(True)
    lr = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    momentum = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    gx, glr, gm = torch.autograd.grad(outer(x, lr, momentum), (x, lr, momentum))
    eps = 1e-6
    for i, j in [(0, 0), (2, 1), (4, 2)]:
        plus, minus = x0.clone(), x0.clone()
        plus[i, j] += eps
        minus[i, j] -= eps
        fd = (value(plus, 0.5, 0.6) - value(minus, 0.5, 0.6)) / (2 * eps)
        assert abs(fd - float(gx[i, j])) < 1e-7
    fd_lr = (value(x0, 0.5 + eps, 0.6) - value(x0, 0.5 - eps, 0.6)) / (2 * eps)
    fd_m = (value(x0, 0.5, 0.6 + eps) - value(x0, 0.5, 0.6 - eps)) / (2 * eps)
    assert abs(fd_lr - float(glr)) < 1e-7 and abs(fd_m - float(gm)) < 1e-7
    assert float(gx.abs().sum()) > 1e-3  # not trivially zero


# ---- gtn and teach -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    d = run(TS.digits, OpContext(root / "d"), normalize=True)
    parts = run(D.split, OpContext(root / "s"), data=d, test=0.2, seed=0)
    return parts["train"], parts["test"]


def _gtn(digits, ctx, **kw):
    train, _ = digits
    args = dict(generator={"$op": "generator", "noise": 8, "hidden": [32]},
                learners=[{"$op": "mlp", "hidden": [16]}, {"$op": "cnn", "channels": [4], "hidden": [8]}],
                real=train, inner_steps=4, inner_batch=20, outer_steps=30, outer_batch=64, checkpoint_every=10,
                curriculum="learned", outer={"$op": "adam", "lr": 3e-3})
    return call(META.gtn, ctx, **{**args, **kw})


def _tensors(path):
    return load_file(str(path / "teacher.safetensors"))


def _same(a, b) -> bool:
    ta, tb = _tensors(a.path), _tensors(b.path)
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


class Crash(Exception):
    pass


def test_gtn_is_deterministic_and_resumes_after_a_kill_to_the_same_teacher(digits, tmp_path):
    full = _gtn(digits, OpContext(tmp_path / "full"))
    again = _gtn(digits, OpContext(tmp_path / "again"))
    assert _same(full, again)
    ctx = OpContext(tmp_path / "crashy")

    def crash_at_30(name, value, step=None):
        ctx.logs.append((name, value, step))
        if step == 30:
            raise Crash()  # abrupt: no checkpoint at 30, the last one is at 20

    ctx.log = crash_at_30
    with pytest.raises(Crash):
        _gtn(digits, ctx)
    assert json.loads((ctx.work_dir / "checkpoint.json").read_text())["step"] == 20
    resumed_ctx = OpContext(tmp_path / "crashy")
    resumed = _gtn(digits, resumed_ctx)
    assert [s for n, _, s in resumed_ctx.logs if n == "meta_loss"] == [30]
    assert _same(resumed, full)
    other_seed = _gtn(digits, OpContext(tmp_path / "seed1"), seed=1)
    assert not _same(other_seed, full)


def test_a_teacher_stores_its_generator_curriculum_and_learned_lr(digits, tmp_path):
    t = _gtn(digits, OpContext(tmp_path / "t"), outer_steps=10)
    config = json.loads((t.path / "config.json").read_text())
    tensors = _tensors(t.path)
    assert tensors["curriculum"].shape == (4, 20, 8)
    assert any("parametrizations.weight.original0" in k for k in tensors)  # weight norm: direction and scale
    assert config["learned"]["lr"] == pytest.approx(t.lr) and t.lr != pytest.approx(0.02)
    assert 0 < t.momentum < 1 and config["curriculum"] == "learned"
    plain = _gtn(digits, OpContext(tmp_path / "p"), outer_steps=10, curriculum="none",
                 generator={"$op": "generator", "noise": 8, "hidden": [32], "weight_norm": False})
    assert "curriculum" not in _tensors(plain.path)
    assert not any("parametrizations" in k for k in _tensors(plain.path))


def test_meta_training_teaches_better_than_the_untrained_generator(digits, tmp_path):
    _, test = digits
    accs = {}
    for steps in (1, 60):
        t = _gtn(digits, OpContext(tmp_path / f"t{steps}"), outer_steps=steps,
                 learners=[{"$op": "mlp", "hidden": [16]}],
                 inner_lr=0.5, outer={"$op": "adam", "lr": 1e-2})
        m = call(META.teach, OpContext(tmp_path / f"m{steps}"), teacher=t, learner={"$op": "mlp", "hidden": [16]})
        accs[steps] = call(C.accuracy, OpContext(tmp_path / f"a{steps}"), model=m, data=test)["value"]
    # measured: 0.13 after one outer step, 0.46 after 60 (4 inner steps of 20 examples; the lr learned 0.5 -> 0.92)
    assert accs[60] > accs[1] + 0.15


def test_teach_gives_a_classifier_and_checks_its_steps(digits, tmp_path):
    from expc.runtime.nets.load import load_classifier

    _, test = digits
    t = _gtn(digits, OpContext(tmp_path / "t"), outer_steps=2)
    m = call(META.teach, OpContext(tmp_path / "m"), teacher=t, learner={"$op": "cnn", "channels": [4], "hidden": [8]},
             seed=3)
    net, config = load_classifier(m)
    assert config["net"]["kind"] == "cnn" and config["training"]["steps"] == 4
    assert config["training"]["lr"] == pytest.approx(t.lr)
    assert 0 <= call(C.accuracy, OpContext(tmp_path / "a"), model=m, data=test)["value"] <= 1
    with pytest.raises(OpError) as e:
        call(META.teach, OpContext(tmp_path / "m2"), teacher=t, learner={"$op": "mlp"}, steps=5)
    assert (e.value.field, e.value.message) == ("steps", "the teacher's learned curriculum has 4 steps, not 5")


def test_a_non_finite_meta_loss_names_the_node_and_the_step_and_keeps_the_checkpoint(tmp_path):
    from expc.runtime.meta.loop import meta_train

    w = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    ctx = OpContext(tmp_path, node="t_boom")
    with pytest.raises(OpError) as e:
        meta_train(w, opt, 30, lambda step: w.weight.sum() * (float("nan") if step == 12 else 1.0), ctx, 10, "gtn")
    assert (e.value.field, e.value.message) == ("outer", "t_boom: the meta-loss is nan at outer step 13")
    assert json.loads((ctx.work_dir / "checkpoint.json").read_text())["step"] == 10


# ---- the sigmoid activation value ----------------------------------------------------------------------


def test_sigmoid_with_slope_and_offset_is_an_mlp_activation(digits, tmp_path):
    from expc.runtime.nets.build import build
    from expc.runtime.ops import fit as FIT

    train, _ = digits
    m = call(FIT.fit, OpContext(tmp_path / "f"), model={"$op": "mlp", "hidden": [8],
             "activation": {"$op": "sigmoid", "slope": 3, "offset": 0.5}}, data=train, steps=3)
    config = json.loads((m.path / "config.json").read_text())
    assert config["net"]["activation"] == {"kind": "sigmoid", "slope": 3.0, "offset": 0.5}
    net = build(config["net"], [4], 2, (0.0, 1.0), seed=0)
    z = torch.linspace(-3, 3, 13)
    assert torch.allclose(net.act(z), torch.sigmoid(3 * (z - 0.5)))


@pytest.fixture
def project(tmp_path):
    def write(src: str):
        (tmp_path / "main.exp").write_text(src)
        return tmp_path / "main.exp"

    return write


def test_the_family_type_checks(project):
    path = project("data d = digits()\n"
                   "meta t = gtn(learners = [mlp(), cnn()], real = d, curriculum = \"learned\")\n"
                   "train m = teach(t, learner = mlp(activation = sigmoid(slope = 2)))\n"
                   "eval a = accuracy(m, d)\n")
    nodes = compile(path).program.nodes
    assert (nodes["t"].type, nodes["m"].type, nodes["a"].type) == ("teacher", "classifier", "metric")


def test_bad_arguments_are_located(project):
    path = project("data d = digits()\n"
                   "meta t = gtn(learners = [adam()], real = d)\n"
                   "meta u = gtn(learners = [mlp()], real = d, curriculum = \"fixed\")\n"
                   "train m = fit(mlp(activation = adam()), d, steps = 3)\n"
                   "train n = fit(mlp(activation = sigmoid(slope = 500)), d, steps = 3)\n"
                   "train o = fit(mlp(activation = \"sigmod\"), d, steps = 3)\n")
    assert compile_errors(path) == [
        ("E301", 2, 26, "argument 'learners' of gtn() expects a list of net, but an item is optimizer"),
        ("E401", 3, 57, "invalid value for 'curriculum' of gtn(): Input should be 'none' or 'learned' (got 'fixed')"),
        ("E401", 4, 32, "invalid value for 'activation' of mlp(): Value error, expected an activation name or "
                        "sigmoid(...), got adam(...)"),
        ("E401", 5, 48, "invalid value for 'slope' of sigmoid(): Input should be less than or equal to 100 (got 500)"),
        ("E401", 6, 32, "invalid value for 'activation' of mlp(): unknown activation 'sigmod': did you mean "
                        "'sigmoid'? (one of relu, tanh, gelu, silu, sigmoid) (got 'sigmod')"),
    ]
