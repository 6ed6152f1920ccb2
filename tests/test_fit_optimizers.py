"""Optimizer values: sgd/adam through `fit` against hand-written torch.optim loops, FOP against a
hand-computed reference, and `finetune` with an optimizer value (same result as the named one,
resumable with FOP's state)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from _opctx import OpContext, run
from pydantic import ValidationError
from safetensors.torch import load_file

from expc.runtime.nets.build import build
from expc.runtime.ops import data as D
from expc.runtime.ops import fit as FIT
from expc.runtime.ops import models as M
from expc.runtime.ops import nets as N
from expc.runtime.ops import optim as O
from expc.runtime.ops import tensors as TS
from expc.runtime.ops import train as T
from expc.runtime.registry import load_registry
from expc.runtime.train.fit import epoch_order
from expc.runtime.train.fop import FOP, layout
from expc.runtime.train.optim import build_optimizer

REG = load_registry()


def inl(op, **kw):
    return {"$op": op.name, **kw}


def built(op, **kw):
    """An operator's params as the executor passes them: validated JSON, inline values built."""
    return REG.built(op.params(**kw), None)


def weights(model) -> dict[str, torch.Tensor]:
    return load_file(str(model.path / "model.safetensors"))


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return run(TS.blobs, OpContext(tmp_path_factory.mktemp("blobs")), n=40, classes=3, dims=4, seed=1)


def hand_loop(data, opt_factory, steps: int, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """What a researcher would write: the same network, batches and seed, torch.optim directly."""
    X, y = (torch.from_numpy(a) for a in data.load())
    arch = N.mlp.params(hidden=[6]).arch(N.CLASSIFIER_DEFAULTS)
    net = build(arch, data.shape, data.classes, (data.lo, data.hi), seed=seed)
    opt = opt_factory(net.parameters())
    torch.manual_seed(seed)
    per_epoch = math.ceil(len(X) / batch)
    for step in range(steps):
        epoch, i = divmod(step, per_epoch)
        idx = epoch_order(seed, epoch, len(X))[i * batch : (i + 1) * batch]
        loss = F.cross_entropy(net(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {k: v.detach() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("spec,reference", [
    (inl(O.sgd, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    (inl(O.sgd, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (inl(O.adam, lr=1e-2, betas=[0.8, 0.99], weight_decay=1e-2),
     lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2)),
    (inl(O.adam, lr=1e-2, weight_decay=0.1, decoupled=True),
     lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1)),
])
def test_fit_steps_like_torch_optim(tmp_path, blobs, spec, reference):
    ctx = OpContext(tmp_path / "fit")
    clf = FIT.fit.fn(built(FIT.fit, model=inl(N.mlp, hidden=[6]), data=blobs, optimizer=spec, steps=12, batch=8), ctx)
    got, want = weights(clf), hand_loop(blobs, reference, steps=12, batch=8)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


@pytest.mark.parametrize("spec,shown", [(inl(O.adam), "adam(lr=0.001)"), (inl(O.sgd), "sgd(lr=0.1)"),
                                        (inl(O.fop), "fop(sgd(lr=0.1))"), (inl(O.adam, lr=0.02), "adam(lr=0.02)")])
def test_fit_default_learning_rates(tmp_path, blobs, spec, shown):
    p = built(FIT.fit, model=inl(N.mlp, hidden=[4]), data=blobs, optimizer=spec, steps=2)
    clf = FIT.fit.fn(p, OpContext(tmp_path))
    assert json.loads((clf.path / "config.json").read_text())["training"]["optimizer"] == shown


def test_optimizer_values_are_validated():
    for op, bad in ((O.sgd, dict(lr=0)), (O.adam, dict(lr=-1)), (O.sgd, dict(lr=0.1, nesterov=True)),
                    (O.sgd, dict(lr=0.1, momentum=1)),
                    (O.adam, dict(lr=1e-3, betas=[0.9])), (O.adam, dict(lr=1e-3, betas=[0.9, 1.0])),
                    (O.fop, dict(optimizer=inl(O.fop))), (O.fop, dict(structure="full")), (O.fop, dict(every=0))):
        with pytest.raises(ValidationError):
            op.params(**bad)
    assert O.describe(built(O.fop, optimizer=inl(O.adam, lr=1e-3))) == "fop(adam(lr=0.001))"


# ---- FOP ---------------------------------------------------------------------------------------------


def test_fop_layouts():
    assert layout(torch.Size([8, 3, 3, 3]), "auto") == ("matrix", 24, 9)  # spatial: (k*k)^2 shared over channels
    assert layout(torch.Size([8, 3, 3, 3]), "input") == ("matrix", 8, 27)
    assert layout(torch.Size([8, 3, 3, 3]), "diagonal") == ("diagonal", 8, 27)
    assert layout(torch.Size([8, 3, 1, 1]), "spatial") == ("matrix", 8, 3)  # a 1x1 kernel has no spatial extent
    assert layout(torch.Size([10, 64]), "auto") == ("matrix", 10, 64)
    assert layout(torch.Size([10, 5000]), "auto") == ("diagonal", 10, 5000)
    assert layout(torch.Size([10, 5000]), "input") == ("matrix", 10, 5000)
    assert layout(torch.Size([10]), "auto") is None  # biases are not preconditioned


def _regression():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(6, 3, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.3], dtype=torch.float64)
    Y = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    W0 = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    return X, Y, W0


def _grad(W, X, Y):
    """The gradient of 0.5 * mean ||X W^T - Y||^2, by hand."""
    return (X @ W.T - Y).T @ X / len(X)


@pytest.mark.parametrize("structure,every", [("input", 1), ("input", 2), ("diagonal", 1)])
def test_fop_matches_a_hand_computed_reference(structure, every):
    X, Y, W0 = _regression()
    lr, rho, steps = 0.1, 0.5, 5
    # expc: autograd gradients, FOP around torch SGD
    layer = torch.nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(W0)
    opt = build_optimizer(built(O.fop, optimizer=inl(O.sgd, lr=lr), hyper_lr=rho, structure=structure, every=every),
                          layer.parameters())
    assert isinstance(opt, FOP)
    for _ in range(steps):
        loss = 0.5 * ((X @ layer.weight.T - Y) ** 2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # the paper's update rule, by hand: P = M^T M; dJ/dP = -lr G_{t-1}^T G_t; dJ/dM = M (A + A^T)
    W, M, m, prev = W0.clone(), torch.eye(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64), None
    for t in range(steps):
        G = _grad(W, X, Y)
        if t > 0 and t % every == 0:
            if structure == "diagonal":
                m = m - rho * 2 * m * (-lr * (prev * G).sum(0))
            else:
                A = -lr * prev.T @ G
                M = M - rho * M @ (A + A.T)
        if (t + 1) % every == 0:
            prev = G
        W = W - lr * (G * m * m if structure == "diagonal" else G @ M.T @ M)
    assert torch.allclose(layer.weight.detach(), W, rtol=1e-12, atol=1e-12)
    state = opt.preconditioners[layer.weight]
    assert torch.allclose(state["fop_m"], m if structure == "diagonal" else M, rtol=1e-12, atol=1e-12)
    assert not torch.equal(state["fop_m"], torch.ones_like(state["fop_m"]) if structure == "diagonal"
                           else torch.eye(3, dtype=torch.float64))  # it did learn something


def test_fop_preconditioner_speeds_up_an_ill_conditioned_problem():
    """Badly scaled features: with the learned preconditioner, SGD gets much closer to the optimum."""
    X, Y, W0 = _regression()
    best = float(0.5 * ((X @ torch.linalg.lstsq(X, Y).solution - Y) ** 2).sum(1).mean())

    def excess_loss(spec) -> float:
        layer = torch.nn.Linear(3, 2, bias=False).double()
        with torch.no_grad():
            layer.weight.copy_(W0)
        opt = build_optimizer(spec, layer.parameters())
        for _ in range(100):
            loss = 0.5 * ((X @ layer.weight.T - Y) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.detach()) - best

    sgd = excess_loss(built(O.sgd, lr=0.1))
    fop = excess_loss(built(O.fop, optimizer=inl(O.sgd, lr=0.1), hyper_lr=2.0))
    assert 0 < fop < 0.5 * sgd, (fop, sgd)  # measured: 0.016 vs 0.037


def test_fop_fits_a_cnn_with_spatial_preconditioners(tmp_path):
    d = run(TS.digits, OpContext(tmp_path / "d"))
    small = run(D.take, OpContext(tmp_path / "t"), data=d, n=512)
    ctx = OpContext(tmp_path / "fit")
    spec = inl(O.fop, optimizer=inl(O.sgd, lr=0.1, momentum=0.9), hyper_lr=1e-2)
    FIT.fit.fn(built(FIT.fit, model=inl(N.cnn, channels=[4, 8], hidden=[16]), data=small, optimizer=spec,
                     steps=120, batch=32, checkpoint_every=100), ctx)
    curve = [v for name, v, _ in ctx.logs if name == "loss"]
    assert curve[-1] < curve[0] * 0.5, curve
    stored = load_file(str(ctx.work_dir / json.loads((ctx.work_dir / "checkpoint.json").read_text())["tensors"]))
    shapes = sorted(tuple(v.shape) for k, v in stored.items() if k.endswith(".fop_m"))
    # conv kernels: one 3x3-spatial matrix each; dense weights: a matrix over their inputs
    assert shapes == [(9, 9), (9, 9), (16, 16), (32, 32)]
    assert not torch.equal(next(v for k, v in stored.items() if k.endswith(".fop_m") and v.shape == (9, 9)),
                           torch.eye(9))


# ---- finetune with an optimizer value ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    data = run(D.arithmetic, OpContext(root / "data"), n=300, digits=2, seed=0)
    model = run(M.gpt2, OpContext(root / "model"), layers=1, width=16, heads=2, context=16)
    return model, data


def _finetune(lm, ctx, **kw):
    model, data = lm
    p = REG.built(T.finetune.params(model=model, data=data, steps=20, batch=4, checkpoint_every=10, **kw), ctx)
    return T.finetune.fn(p, ctx)


def test_finetune_takes_an_optimizer_value(lm, tmp_path):
    named = _finetune(lm, OpContext(tmp_path / "named"), optimizer="adam", lr=3e-3)
    value = _finetune(lm, OpContext(tmp_path / "value"), optimizer=inl(O.adam), lr=3e-3)
    wa, wb = weights(named), weights(value)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # adam() at lr = 3e-3 is optimizer = "adam", lr = 3e-3
    other = _finetune(lm, OpContext(tmp_path / "betas"), optimizer=inl(O.adam, betas=[0.5, 0.9]), lr=3e-3)
    assert not all(torch.equal(wa[k], v) for k, v in weights(other).items())
    base = dict(model=lm[0], data=lm[1], steps=2, batch=1, lr=1e-3)
    T.finetune.params(**base, optimizer=inl(O.adam, lr=1e-3))  # the same lr twice is no conflict
    with pytest.raises(ValidationError, match="the learning rate is given twice"):
        T.finetune.params(**base, optimizer=inl(O.fop, optimizer=inl(O.sgd, lr=0.1)))
    with pytest.raises(ValidationError, match="weight_decay goes into the optimizer value"):
        T.finetune.params(**base, optimizer=inl(O.sgd), weight_decay=0.1)
    with pytest.raises(ValidationError, match="expected an optimizer name or value"):
        T.finetune.params(**base, optimizer=inl(N.mlp))


class Crash(Exception):
    pass


def test_finetune_with_fop_resumes_exactly(lm, tmp_path):
    spec = inl(O.fop, optimizer=inl(O.adam), hyper_lr=1e-3)
    full = _finetune(lm, OpContext(tmp_path / "full"), optimizer=spec, lr=3e-3)
    ctx = OpContext(tmp_path / "crashy")

    def crash_at_20(name, value, step=None):
        if step == 20:
            raise Crash()

    ctx.log = crash_at_20
    with pytest.raises(Crash):
        _finetune(lm, ctx, optimizer=spec, lr=3e-3)
    index = json.loads((ctx.work_dir / "checkpoint.json").read_text())
    assert index["step"] == 10
    stored = load_file(str(ctx.work_dir / index["tensors"]))
    assert any(k.endswith(".fop_m") for k in stored) and any(k.endswith(".exp_avg") for k in stored)
    resumed = _finetune(lm, OpContext(tmp_path / "crashy"), optimizer=spec, lr=3e-3)
    wa, wb = weights(full), weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_finetune_optimizer_is_type_checked(tmp_path):
    """`optimizer` is a name or an optimizer value: the checker rejects a value of another type (E301,
    from the type system), the params model a name it does not know; the command line sets a name."""
    from conftest import write

    from expc.interpreter.compiler import compile
    from expc.interpreter.session import Session
    from expc.spec.diagnostics import CompileError

    field = T.finetune.field("optimizer")
    assert field.input_types == ("optimizer",) and field.constants is not None
    (tmp_path / "t.txt").write_text("hello world\nhello there\n")
    head = ('model m = gpt2(layers = 1, width = 16, heads = 2, context = 16)\ndata t = text("t.txt")\n'
            "train a = finetune(m, t, steps = 1, lr = 1e-3, batch = 1, context = 8, optimizer = {})\n")
    for good in ('"sgd"', "adam(betas = [0.9, 0.95])", "fop(optimizer = sgd())"):
        compile(write(tmp_path / "ok.exp", head.format(good)))
    with pytest.raises(CompileError) as e:
        compile(write(tmp_path / "bad.exp", head.format("pgd(eps = 0.1)")))
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line) == ("E301", 3)
    assert d.message == "argument 'optimizer' of finetune() expects optimizer or \"adamw\" | \"adam\" | \"sgd\", got attack"
    with pytest.raises(CompileError) as e:
        compile(write(tmp_path / "bad.exp", head.format('"adagrad"')))
    (d,) = e.value.diagnostics
    assert d.code == "E401" and "unknown optimizer 'adagrad'" in d.message
    s = Session.open(write(tmp_path / "ok.exp", head.format('"sgd"')), ["a.optimizer=adam"], tmp_path / "store")
    assert s.program.nodes["a"].args["optimizer"].value == "adam"
