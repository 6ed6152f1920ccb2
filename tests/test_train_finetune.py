"""finetune: learns, validates its params, resumes after a kill with the same result, stops on NaN."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _opctx import OpContext, run
from pydantic import ValidationError
from safetensors.torch import load_file

from expc.runtime.api import Cancelled, OpError
from expc.runtime.ops import data as D
from expc.runtime.ops import evaluate as E
from expc.runtime.ops import models as M
from expc.runtime.ops import train as T
from expc.runtime.train.loop import TrainConfig, lr_at

SMALL = dict(layers=1, width=32, heads=2, context=32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    data = run(D.arithmetic, OpContext(root / "data"), n=1500, digits=3, seed=0)
    parts = run(D.split, OpContext(root / "split"), data=data, test=0.1)
    model = run(M.gpt2, OpContext(root / "model"), **SMALL)
    return root, model, parts["train"], parts["test"]


def _weights(m) -> dict[str, torch.Tensor]:
    return load_file(str(m.path / "model.safetensors"))


def _same(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_finetune_decreases_heldout_loss(setup, tmp_path):
    root, model, train, test = setup
    before = run(E.loss, OpContext(tmp_path / "e0"), model=model, data=test)["value"]
    ctx = OpContext(tmp_path / "ft", node="m_math")
    tuned = run(T.finetune, ctx, model=model, data=train, steps=120, lr=3e-3, batch=16, warmup=10)
    after = run(E.loss, OpContext(tmp_path / "e1"), model=tuned, data=test)["value"]
    assert before > 5.0 and after < 2.6, (before, after)
    curve = [v for name, v, _ in ctx.logs if name == "loss"]
    assert [s for _, _, s in ctx.logs] == list(range(10, 121, 10))
    assert curve[-1] < curve[0] - 2.0
    assert ctx.progressed == 120
    assert (tuned.path / "expc_tokenizer.json").exists() and tuned.architecture == "GPT2LMHeadModel"


@pytest.mark.parametrize("optimizer,schedule", [("adam", "linear"), ("sgd", "constant")])
def test_other_optimizers_and_schedules_learn(setup, tmp_path, optimizer, schedule):
    root, model, train, test = setup
    lr = 3e-3 if optimizer == "adam" else 0.3
    ctx = OpContext(tmp_path / "ft")
    run(T.finetune, ctx, model=model, data=train, steps=40, lr=lr, batch=8, optimizer=optimizer, schedule=schedule)
    curve = [v for _, v, _ in ctx.logs]
    assert curve[-1] < curve[0]


def test_lr_schedules():
    cos = TrainConfig(steps=110, lr=1.0, batch=1, context=2, warmup=10)
    assert [lr_at(s, cos) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_at(10, cos) == 1.0 and abs(lr_at(60, cos) - 0.5) < 1e-12 and lr_at(109, cos) < 1e-3
    lin = TrainConfig(steps=100, lr=2.0, batch=1, context=2, schedule="linear")
    assert lr_at(0, lin) == 2.0 and lr_at(50, lin) == 1.0
    const = TrainConfig(steps=100, lr=2.0, batch=1, context=2, schedule="constant")
    assert {lr_at(s, const) for s in range(100)} == {2.0}


def test_params_are_validated(setup, tmp_path):
    root, model, train, _ = setup
    base = dict(model=model, data=train, steps=10, lr=1e-3, batch=4)
    for bad in (dict(steps=0), dict(lr=0.0), dict(lr=-1e-3), dict(batch=0), dict(warmup=-1),
                dict(weight_decay=-0.1), dict(optimizer="rmsprop"), dict(schedule="step"), dict(context=1)):
        with pytest.raises(ValidationError):
            T.finetune.params(**{**base, **bad})
    with pytest.raises(OpError) as e:
        run(T.finetune, OpContext(tmp_path / "a"), **base, context=64)
    assert e.value.field == "context" and "exceeds the model's context of 32" in e.value.message
    tiny = run(D.take, OpContext(tmp_path / "t"), data=train, n=2)
    with pytest.raises(OpError, match="fewer than context"):
        run(T.finetune, OpContext(tmp_path / "b"), **{**base, "data": tiny})


def test_nan_loss_names_node_and_step(setup, tmp_path):
    root, model, train, _ = setup
    ctx = OpContext(tmp_path / "nan", node="m_boom")
    with pytest.raises(OpError) as e:
        run(T.finetune, ctx, model=model, data=train, steps=30, lr=1e12, batch=4, optimizer="sgd",
            schedule="constant", clip=0.0)
    msg = e.value.message
    assert msg.startswith("m_boom: training loss is ") and e.value.field == "lr"
    step = int(msg.split(" at step ")[1].split()[0])
    assert 1 < step <= 10  # step 1 is finite; the first update blows the weights up
    assert not list(ctx.out_dir.iterdir())  # no model written


def _ft(setup, ctx, **kw):
    _, model, train, _ = setup
    args = dict(model=model, data=train, steps=60, lr=3e-3, batch=8, checkpoint_every=20)
    return run(T.finetune, ctx, **{**args, **kw})


class Crash(Exception):
    pass


def test_resume_after_crash_equals_uninterrupted(setup, tmp_path):
    full = _ft(setup, OpContext(tmp_path / "full"))

    ctx = OpContext(tmp_path / "crashy")

    def crash_at_50(name, value, step=None):
        ctx.logs.append((name, value, step))
        if step == 50:
            raise Crash()  # an abrupt failure: no checkpoint at 50, the last one is at 40

    ctx.log = crash_at_50
    with pytest.raises(Crash):
        _ft(setup, ctx)
    index = json.loads((ctx.work_dir / "checkpoint.json").read_text())
    assert index["step"] == 40 and (ctx.work_dir / index["tensors"]).exists()
    assert sorted(p.name for p in ctx.work_dir.iterdir()) == ["checkpoint.json", "ckpt-40.safetensors"]

    again = OpContext(tmp_path / "crashy")  # same work dir, fresh process state
    resumed = _ft(setup, again)
    assert [s for _, _, s in again.logs] == [50, 60]
    assert _same(resumed, full)


def test_resume_after_cancel_equals_uninterrupted(setup, tmp_path):
    full = _ft(setup, OpContext(tmp_path / "full"), seed=3)
    ctx = OpContext(tmp_path / "c", cancel_at=3)  # cancelled at the check after step 30
    with pytest.raises(Cancelled):
        _ft(setup, ctx, seed=3)
    assert json.loads((ctx.work_dir / "checkpoint.json").read_text())["step"] == 30
    again = OpContext(tmp_path / "c")
    resumed = _ft(setup, again, seed=3)
    assert again.progressed == 60 and [s for _, _, s in again.logs][0] == 40
    assert _same(resumed, full)


@pytest.mark.slow
def test_resume_after_sigkill_equals_uninterrupted(setup, tmp_path):
    """A real SIGKILL of the training process after step 50: the rerun starts from step 40."""
    root, model, train, _ = setup
    full = _ft(setup, OpContext(tmp_path / "full"))
    work = tmp_path / "killed"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from _opctx import OpContext, run
        from expc.runtime.data.values import TextData
        from expc.runtime.values import ModelDir
        from expc.runtime.ops import train as T
        ctx = OpContext({str(work)!r})
        def log(name, value, step=None):
            if step == 50:
                os.kill(os.getpid(), signal.SIGKILL)
        ctx.log = log
        model = ModelDir(path={str(model.path)!r})
        data = TextData(path={str(train.path)!r}, file={train.file!r}, n={train.n})
        run(T.finetune, ctx, model=model, data=data, steps=60, lr=3e-3, batch=8, checkpoint_every=20)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert json.loads((work / "work" / "checkpoint.json").read_text())["step"] == 40
    again = OpContext(work)
    resumed = _ft(setup, again)
    assert [s for _, _, s in again.logs] == [50, 60]
    assert _same(resumed, full)


def test_checkpoint_is_not_pickle(setup, tmp_path):
    ctx = OpContext(tmp_path / "c", cancel_at=1)
    with pytest.raises(Cancelled):
        _ft(setup, ctx, optimizer="sgd", lr=0.1)
    names = sorted(p.name for p in ctx.work_dir.iterdir())
    assert names == ["checkpoint.json", "ckpt-10.safetensors"]
    tensors = load_file(str(ctx.work_dir / "ckpt-10.safetensors"))
    assert tensors["rng.torch"].dtype == torch.uint8 and tensors["rng.data"].dtype == torch.uint8
    assert any(k.startswith("optim.") and k.endswith("momentum_buffer") for k in tensors)
    # an SGD run resumes too
    again = OpContext(tmp_path / "c")
    _ft(setup, again, optimizer="sgd", lr=0.1)
    assert [s for _, _, s in again.logs][0] == 20


def test_thread_count_override(monkeypatch):
    from expc.runtime.train.loop import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("EXPC_THREADS", "1")
        assert set_threads(workers=1) == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv("EXPC_THREADS")
        assert set_threads(workers=64) == 1  # more workers than cores: one thread each
        import os

        # not the machine's load: the same count every time (results depend on it)
        cores = len(os.sched_getaffinity(0))
        assert [set_threads(workers=1) for _ in range(3)] == [cores] * 3
    finally:
        torch.set_num_threads(before)


def test_experiment_dtype_bfloat16_trains_under_autocast(tmp_path):
    """`experiment { dtype = "bfloat16" }`: forward passes in bf16 (weights stay float32); the result
    differs from float32 training, still learns, and the setting keys every node."""
    from expc.interpreter.session import Session

    program = """
experiment mixed {{ seed = 0  dtype = "{dtype}" }}
data d = arithmetic(n = 300, digits = 2)
model b = gpt2(layers = 1, width = 32, heads = 2, context = 32)
eval before = loss(b, d)
train m = finetune(b, d, steps = 40, lr = 3e-3, batch = 8)
eval after = loss(m, d)
"""
    results = {}
    for dtype in ("float32", "bfloat16"):
        f = tmp_path / f"{dtype}.exp"
        f.write_text(program.format(dtype=dtype))
        s = Session.open(f, [], tmp_path / "store")
        r = s.run()
        assert r.status == "ok", r.failure
        assert sorted(r.ran) == ["after", "b", "before", "d", "m"]  # dtype keys every node
        results[dtype] = r.results
    bf, fp = results["bfloat16"], results["float32"]
    assert bf["after"]["value"] < bf["before"]["value"] - 0.3  # it learns
    assert bf["after"]["value"] != fp["after"]["value"]  # and it is not float32 under another name
    assert abs(bf["after"]["value"] - fp["after"]["value"]) < 0.3
    from safetensors.torch import load_file

    weights = load_file(str(bf["m"].path / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in weights.values())
