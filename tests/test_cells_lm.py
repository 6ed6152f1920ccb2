"""rnn_lm trained by fit on text and evaluated by perplexity / loss: it learns, it is deterministic,
a cancelled run resumes to the same weights, and misuse gets located diagnostics."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _opctx import OpContext, run
from safetensors.torch import load_file

from expc.runtime.api import Cancelled, OpError
from expc.runtime.nets import rnn_lm
from expc.runtime.ops import cells as CE
from expc.runtime.ops import data as D
from expc.runtime.ops import evaluate as EV
from expc.runtime.ops import fit as FIT
from expc.runtime.registry import load_registry

REG = load_registry()
TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


def fit(ctx, **kw):
    """`fit` as the executor calls it: params validated in JSON form, inline values built."""
    return FIT.fit.fn(REG.built(FIT.fit.params(**kw), ctx), ctx)


def lm(**kw):
    return {"$op": "rnn_lm", "embed": 8, "hidden": 16, "context": 16, **kw}


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "t.txt").write_text(TEXT)
    return run(D.text, OpContext(root / "d"), path=str(root / "t.txt"), chunk="file")


def weights(model):
    return load_file(str(model.path / "model.safetensors"))


def test_an_lstm_lm_learns_and_is_evaluated(text, tmp_path):
    ctx = OpContext(tmp_path / "fit")
    model = fit(ctx, model=lm(), data=text, steps=120, batch=8, optimizer={"$op": "adam", "lr": 1e-2}, clip=1.0,
                validation=text, validate_every=60)
    losses = [v for n, v, _ in ctx.logs if n == "loss"]
    assert len(losses) == 12 and losses[-1] < 0.6 * losses[0]
    assert [s for n, _, s in ctx.logs if n == "val_loss"] == [60, 120]
    config = json.loads((model.path / "config.json").read_text())
    assert config["net"]["cell"]["trees"]["h"] == ["mul", ["sigmoid", ["add", ["linear", "x"], ["linear", "h"]]],
                                                   ["tanh", "c'"]]
    assert "layers.0.trees.c.0.weight" in weights(model)
    ppl = run(EV.perplexity, OpContext(tmp_path / "ppl"), model=model, data=text)
    windowed = run(EV.perplexity, OpContext(tmp_path / "ppl2"), model=model, data=text, context=16)
    assert ppl["tokens"] == len(TEXT.encode()) and windowed["tokens"] == ppl["tokens"]
    # the state carried through long stretches helps: lower than from a zero state every 16 bytes
    assert 1.0 < ppl["value"] < windowed["value"] < 256
    loss = run(EV.loss, OpContext(tmp_path / "loss"), model=model, data=text)
    assert loss["value"] == pytest.approx(math.log(ppl["value"]))
    probe = run(CE.byte_losses, OpContext(tmp_path / "probe"), model=model, data=text, n=10)
    assert len(probe["value"]) == 10 and probe["mean"] == pytest.approx(sum(probe["value"]) / 10)


def test_same_seed_same_weights_and_resume_after_cancel(text, tmp_path):
    kw = dict(model=lm(cell={"$op": "gru_cell"}, layers=2), data=text, steps=40, batch=4, checkpoint_every=10)
    a = fit(OpContext(tmp_path / "a"), **kw)
    b = fit(OpContext(tmp_path / "b"), **kw)
    assert all(torch.equal(weights(a)[k], weights(b)[k]) for k in weights(a))
    ctx = OpContext(tmp_path / "c", cancel_at=2)
    with pytest.raises(Cancelled):
        fit(ctx, **kw)
    resumed = fit(OpContext(tmp_path / "c"), **kw)
    assert all(torch.equal(weights(a)[k], weights(resumed)[k]) for k in weights(a))


def test_a_parameter_budget(text, tmp_path):
    model = fit(OpContext(tmp_path / "f"), model=lm(params=20_000, hidden=1), data=text, steps=1, batch=2)
    net, config = rnn_lm.load(model)
    n = sum(p.numel() for p in net.parameters())
    assert abs(n - 20_000) < 600 and config["net"]["hidden"] > 1


def test_misuse_is_located(text, tmp_path):
    from expc.runtime.ops import tensors as TS

    digits = run(TS.digits, OpContext(tmp_path / "digits"))
    with pytest.raises(OpError) as err:
        fit(OpContext(tmp_path / "x"), model=lm(), data=digits, steps=1)
    assert err.value.field == "data" and "rnn_lm(...) trains on text" in str(err.value)
    with pytest.raises(OpError) as err:
        fit(OpContext(tmp_path / "y"), model={"$op": "mlp"}, data=text, steps=1)
    assert err.value.field == "model" and "fit on text trains a recurrent language model" in str(err.value)
    with pytest.raises(OpError) as err:
        fit(OpContext(tmp_path / "z"), model=lm(context=5000), data=text, steps=1)
    assert err.value.field == "data" and "fewer than context + 1" in str(err.value)
