"""The torch-free path of the merge engine: plain linear merges of float32/float16 models run in numpy,
give what the torch path gives, and `expc run` of one never imports torch."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from _merge_models import (DEM, M0, M1, M2, add, call, max_err, mul,
                           sharded_trio, state_dict, stored_dtypes, sub)
from _opctx import OpContext
from conftest import EXAMPLES

from expc.runtime.merge import engine
from expc.runtime.merge.engine import run_algebra

@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return sharded_trio(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def gpt2_f16(gpt2, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("gpt2_f16")
    out = []
    for p in gpt2:
        AutoModelForCausalLM.from_pretrained(p, dtype=torch.float16).save_pretrained(root / p.name)
        out.append(root / p.name)
    return out


@pytest.fixture
def numpy_runs(monkeypatch):
    """How many merges took the numpy path."""
    calls = []
    real = engine.execute_numpy

    def spy(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(engine, "execute_numpy", spy)
    return calls


def _both(models, tree, tmp_path, **kw):
    a = run_algebra(models, tree, OpContext(tmp_path / "numpy"), **kw)
    b = run_algebra(models, tree, OpContext(tmp_path / "torch"), use_numpy=False, **kw)
    return state_dict(a.path), state_dict(b.path), a, b


def _rel_err(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max(((a[k].float() - b[k].float()).abs().max() / b[k].float().abs().max().clamp_min(1e-30)).item()
               for k in b)  # fmt: skip


@pytest.mark.parametrize("chunk_elems", [None, 1000])
def test_numpy_path_matches_torch_path_on_sharded_float32_inputs(gpt2, tmp_path, numpy_runs, chunk_elems):
    sn, st, a, b = _both(gpt2, DEM, tmp_path, chunk_elems=chunk_elems, max_shard_bytes=40_000)
    assert numpy_runs == [1]
    assert _rel_err(sn, st) <= 1e-6
    assert all(sn[k].dtype == torch.float32 for k in sn)
    bm, m1, m2 = (state_dict(p) for p in gpt2)
    ref = {k: bm[k] + 0.5 * (m1[k] - bm[k]) + 0.3 * (m2[k] - bm[k]) for k in bm}
    assert max_err(sn, ref) < 1e-6
    # the same output files, index and metadata
    assert sorted(p.name for p in a.path.iterdir()) == sorted(p.name for p in b.path.iterdir())
    assert (a.path / "model.safetensors.index.json").read_text() == (b.path / "model.safetensors.index.json").read_text()
    assert (a.dtype, a.n_params, a.architecture) == (b.dtype, b.n_params, b.architecture)


def test_numpy_path_constants_and_float16_output(gpt2, tmp_path, numpy_runs):
    # 1.5*m1 - 0.5*m2 + 0.25, written as float16
    tree = call("cast", model=add(sub(mul(1.5, M1), mul(0.5, M2)), 0.25), dtype="float16")
    sn, st, _, _ = _both(gpt2, tree, tmp_path)
    assert numpy_runs == [1]
    assert all(sn[k].dtype == torch.float16 for k in sn)
    for k in st:  # at most one float16 rounding step apart (float32 fma vs multiply-add)
        torch.testing.assert_close(sn[k].float(), st[k].float(), rtol=2**-10, atol=0)


def test_numpy_path_on_float16_inputs(gpt2_f16, tmp_path, numpy_runs):
    sn, st, _, _ = _both(gpt2_f16, DEM, tmp_path)
    assert numpy_runs == [1]
    assert stored_dtypes(gpt2_f16[0]) == {"F16"}
    assert all(sn[k].dtype == torch.float16 for k in sn)
    for k in st:
        torch.testing.assert_close(sn[k].float(), st[k].float(), rtol=2**-10, atol=0)


@pytest.mark.parametrize(
    "tree",
    [
        call("cast", model=DEM, dtype="bfloat16"),  # numpy has no bfloat16
        add(mul(M1, M2), M0),  # a product
        call("ties", base=M0, models=[M1, M2], weights=[0.5, 0.5], density=0.5),  # a kernel
    ],
    ids=["bf16", "product", "ties"],
)
def test_everything_else_takes_the_torch_path(gpt2, tmp_path, numpy_runs, tree):
    run_algebra(gpt2, tree, OpContext(tmp_path))
    assert numpy_runs == []


def test_bfloat16_inputs_take_the_torch_path(gpt2, tmp_path, numpy_runs):
    from transformers import AutoModelForCausalLM

    bf = []
    for p in gpt2:
        AutoModelForCausalLM.from_pretrained(p, dtype=torch.bfloat16).save_pretrained(tmp_path / "in" / p.name)
        bf.append(tmp_path / "in" / p.name)
    out = run_algebra(bf, DEM, OpContext(tmp_path))
    assert numpy_runs == [] and stored_dtypes(out.path) == {"BF16"}


PROGRAM = """\
experiment lin { seed = 0 }
param w1 = 0.5
model base = pretrained("models/base")
model m1 = pretrained("models/m1")
model m2 = pretrained("models/m2")
merge ta = base + w1 * (m1 - base) + 0.3 * (m2 - base)
"""


def test_expc_run_of_a_linear_merge_never_imports_torch(tmp_path):
    # examples/models are float32 GPT-2 models; the device is left at its default ("auto")
    assert stored_dtypes(EXAMPLES / "models" / "base") == {"F32"}
    shutil.copytree(EXAMPLES / "models", tmp_path / "models")
    (tmp_path / "p.exp").write_text(PROGRAM)
    out = tmp_path / "ta"
    argv = ["run", str(tmp_path / "p.exp"), "--cache", str(tmp_path / "store"), "--save", f"ta={out}"]
    code = (
        "import sys, io, contextlib\n"
        "from expc.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    assert main({argv!r}) == 0\n"
        "assert '1 ran' in buf.getvalue() or '4 ran' in buf.getvalue(), buf.getvalue()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'safetensors'}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stdout + res.stderr
    b, m1, m2 = (state_dict(tmp_path / "models" / n) for n in ("base", "m1", "m2"))
    ref = {k: b[k] + 0.5 * (m1[k] - b[k]) + 0.3 * (m2[k] - b[k]) for k in b}
    assert max_err(state_dict(out), ref) < 1e-6
