"""`expc check` finds what the merge runtime would refuse (tests/test_merge_checks.py) when the pretrained()
directories exist: the same code and text, at the operand's source span, read from config.json and the
safetensors headers before anything runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _merge_models import save_tiny
from _opctx import OpContext

from expc.interpreter.compiler import compile
from expc.interpreter.prechecks import constant_args
from expc.runtime.api import UNKNOWN, OpError, Producer
from expc.runtime.merge.engine import run_algebra
from expc.runtime.ops.merge import pretrained
from expc.spec.diagnostics import CompileError

AVG = {"op": "add", "args": [{"op": "mul", "args": [0.5, {"model": 0}]}, {"op": "mul", "args": [0.5, {"model": 1}]}]}
TWO = (
    "experiment bad {{ seed = 0 }}\n"
    'model base = pretrained("{first}")\n'
    'model other = pretrained("{second}")\n'
    "merge dem = base + 0.5*(other - base)\n"
)
OTHER_AT = (4, 25)  # `other` in `0.5*(other - base)`
OTHER_PATH_AT = (3, 26)  # the string in `pretrained("...")` on line 3


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("prechecks")
    save_tiny(root / "base", seed=0, shard="40KB")
    return root


def model(root: Path, name: str, **kw) -> Path:
    d = root / name
    if not d.exists():
        save_tiny(d, seed=1, tokenizer=False, **kw)
    return d


def check_errors(tmp_path: Path, text: str) -> list:
    (tmp_path / "bad.exp").write_text(text)
    with pytest.raises(CompileError) as e:
        compile(tmp_path / "bad.exp")
    return e.value.diagnostics


def at(diag) -> tuple[int, int]:
    return diag.span.line, diag.span.col


def run_time_error(tmp_path: Path, models: list[Path]) -> OpError:
    with pytest.raises(OpError) as e:
        run_algebra(models, AVG, OpContext(tmp_path / "run"))
    return e.value


@pytest.mark.parametrize(
    "first, second, kw, message",
    [
        ("base", "llama", {"kind": "llama"},
         "architectures differ: this model is LlamaForCausalLM but the first model is GPT2LMHeadModel"),
        ("base", "vocab", {"vocab": 100},
         "vocabulary sizes differ: this model has 100 tokens, the first model 96 "
         "(tensor 'transformer.wte.weight' is [100, 32] here, [96, 32] there)"),
        ("base", "positions", {"positions": 32},
         "tensor 'transformer.wpe.weight' has shape [32, 32] in this model but [64, 32] in the first model"),
        ("base", "deeper", {"layers": 3},
         "this model has tensor 'transformer.h.2.attn.c_attn.bias', which the first model lacks (and 11 more)"),
        ("deeper", "base", {"layers": 3},
         "tensor 'transformer.h.2.attn.c_attn.bias' of the first model is missing from this model (and 11 more)"),
    ],
)  # fmt: skip
def test_mismatch_is_reported_at_the_operand(root, tmp_path, first, second, kw, message):
    made = model(root, "deeper" if "deeper" in (first, second) else second, **kw)
    dirs = [root / first, root / second]
    assert made in dirs
    (d,) = check_errors(tmp_path, TWO.format(first=dirs[0], second=dirs[1]))
    assert (d.code, d.message, at(d)) == ("E600", f"dem: {message}", OTHER_AT)
    # exactly what the run would say, at the operand run_algebra names
    err = run_time_error(tmp_path, dirs)
    assert (err.field, err.code, f"dem: {err.message}", err.hint) == ("models.1", d.code, d.message, d.hint)


def test_vocabulary_hint_and_rendering_through_expc_check(root, tmp_path, run_cli):
    other = model(root, "vocab", vocab=100)
    (tmp_path / "bad.exp").write_text(TWO.format(first=root / "base", second=other))
    code, out, err = run_cli("check", tmp_path / "bad.exp")
    text = out + err
    assert code != 0
    assert "bad.exp:4:25: error[E600]: dem: vocabulary sizes differ: this model has 100 tokens, the first model 96" in (
        text
    )
    assert "merge dem = base + 0.5*(other - base)\n    |                         ^^^^^" in text
    assert "different tokenizers" in text


def test_tensorwise_call_operands_are_checked(root, tmp_path):
    other = model(root, "positions", positions=32)
    text = TWO.format(first=root / "base", second=other).replace(
        "merge dem = base + 0.5*(other - base)", "merge t = ties(base, [base, other], density = 0.5)"
    )
    (d,) = check_errors(tmp_path, text)
    assert d.code == "E600" and at(d) == (4, 29)
    assert d.message == (
        "t: tensor 'transformer.wpe.weight' has shape [32, 32] in this model but [64, 32] in the first model"
    )


def test_operands_computed_by_the_program_are_left_to_the_run(root, tmp_path):
    other = model(root, "vocab", vocab=100)
    gpt2 = "model g = gpt2(layers = 2, width = 32, heads = 2, context = 64, vocab = 96)\n"
    program = TWO.format(first=root / "base", second=other) + gpt2
    # the first operand is computed: every message compares with it, so nothing is compared
    (tmp_path / "ok.exp").write_text(program.replace("base + 0.5*(other - base)", "g + 0.5*(other - g)"))
    compile(tmp_path / "ok.exp")
    # a computed operand in the middle: the known ones are still compared with the first
    text = program.replace("base + 0.5*(other - base)", "base + 0.5*(g - base) + 0.1*(other - base)")
    (d,) = check_errors(tmp_path, text)
    assert at(d) == (4, 42) and d.message.startswith("dem: vocabulary sizes differ: this model has 100 tokens")


def test_compatible_directories_pass(root, tmp_path):
    copy = root / "copy"
    if not copy.exists():
        shutil.copytree(root / "base", copy)
    (tmp_path / "ok.exp").write_text(TWO.format(first=root / "base", second=copy))
    assert compile(tmp_path / "ok.exp").program.nodes["dem"].op == "algebra"


@pytest.mark.parametrize("damage", ["no_config", "bad_config", "no_weights", "missing_shard", "truncated", "pickled"])
def test_broken_directory_is_reported_once_at_its_pretrained_call(root, tmp_path, damage):
    d = tmp_path / damage
    shutil.copytree(root / "base", d)
    shards = sorted(d.glob("model-*.safetensors"))
    if damage == "no_config":
        (d / "config.json").unlink()
    elif damage == "bad_config":
        (d / "config.json").write_text('{\n  "model_type": gpt2\n}')
    elif damage in ("no_weights", "pickled"):
        for f in shards:
            f.unlink()
        (d / "model.safetensors.index.json").unlink()
        if damage == "pickled":
            (d / "pytorch_model.bin").write_bytes(b"not read: expc never unpickles")
    elif damage == "missing_shard":
        shards[1].unlink()
    elif damage == "truncated":
        os.truncate(shards[0], shards[0].stat().st_size - 100)
    # one diagnostic, at the path, as the pretrained node reports it when it runs (the merge is not blamed)
    (diag,) = check_errors(tmp_path, TWO.format(first=root / "base", second=d))
    with pytest.raises(OpError) as e:
        pretrained.fn(pretrained.params(path=str(d)), OpContext(tmp_path / "p"))
    assert (diag.code, diag.message, diag.hint, at(diag)) == ("E600", f"other: {e.value.message}", e.value.hint,
                                                             OTHER_PATH_AT)  # fmt: skip
    # a broken first operand: the merge has nothing to compare with, and its own call is blamed
    (diag,) = check_errors(tmp_path, TWO.format(first=d, second=root / "base"))
    assert diag.message.startswith("base: ") and at(diag) == (2, 25)


def test_a_missing_directory_stays_one_e501(root, tmp_path):
    diags = check_errors(tmp_path, TWO.format(first=root / "base", second=tmp_path / "nowhere"))
    assert [d.code for d in diags] == ["E501"]


def test_precheck_arguments_describe_the_producers(root, tmp_path):
    text = TWO.format(first=root / "base", second=root / "base").replace("0.5*", "w*")
    (tmp_path / "ok.exp").write_text(text + "param w ~ uniform(0, 1, default = 0.5)\n")
    nodes = compile(tmp_path / "ok.exp").program.nodes
    args = constant_args(nodes["dem"].args, nodes)
    base = Producer("pretrained", {"path": str((root / "base").resolve())})
    assert args["models"] == [base, Producer("pretrained", base.args)]
    assert args["expr"]["args"][1]["args"][0] is UNKNOWN  # the searched weight is known only when it runs
