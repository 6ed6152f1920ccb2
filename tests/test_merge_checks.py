"""pretrained() and the checks made before any weight is loaded, each with its diagnostic."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from _merge_models import save_tiny, state_dict
from _opctx import OpContext

from expc.runtime.api import OpError
from expc.runtime.merge.engine import run_algebra
from expc.runtime.ops.merge import algebra, pretrained

M0, M1 = {"model": 0}, {"model": 1}
AVG = {"op": "add", "args": [{"op": "mul", "args": [0.5, M0]}, {"op": "mul", "args": [0.5, M1]}]}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("checks")


@pytest.fixture(scope="module")
def base(root):
    return save_tiny(root / "base", seed=0, shard="40KB")


def merge_error(tmp_path, models, tree=AVG) -> OpError:
    ctx = OpContext(tmp_path)
    with pytest.raises(OpError) as e:
        run_algebra(models, tree, ctx)
    # checked before loading: no output weights were started
    assert not list(ctx.out_dir.glob("*.safetensors"))
    return e.value


def test_pretrained_links_files_and_describes_the_model(base, tmp_path):
    ctx = OpContext(tmp_path)
    m = pretrained.fn(pretrained.params(path=str(base)), ctx)
    assert m.path == ctx.out_dir and m.architecture == "GPT2LMHeadModel" and m.dtype == "float32"
    files = sorted(p.name for p in ctx.out_dir.iterdir())
    assert files == sorted(p.name for p in base.iterdir())
    assert all(p.is_symlink() for p in ctx.out_dir.iterdir())
    assert m.n_params == sum(v.numel() for v in state_dict(base).values())
    # usable as a merge operand
    out = algebra.fn(algebra.params(models=[m, m], expr=AVG), OpContext(tmp_path / "merge"))
    assert torch.equal(state_dict(out.path)["transformer.wte.weight"], state_dict(base)["transformer.wte.weight"])


def test_pickled_weights_are_refused_with_a_conversion_hint(root, tmp_path):
    d = root / "pickled"
    d.mkdir()
    shutil.copy(root / "base" / "config.json", d)
    (d / "pytorch_model.bin").write_bytes(b"not read: expc never unpickles")
    with pytest.raises(OpError, match="pytorch_model.bin is a pickled PyTorch checkpoint") as e:
        pretrained.fn(pretrained.params(path=str(d)), OpContext(tmp_path))
    assert e.value.field == "path" and "safe_serialization=True" in e.value.hint


def test_pickled_weights_next_to_safetensors_are_ignored(base, root, tmp_path):
    d = root / "both"
    shutil.copytree(base, d)
    (d / "pytorch_model.bin").write_bytes(b"junk")
    ctx = OpContext(tmp_path)
    pretrained.fn(pretrained.params(path=str(d)), ctx)
    assert not (ctx.out_dir / "pytorch_model.bin").exists()
    assert "ignoring pytorch_model.bin" in ctx.warnings[0][0]


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no_config", "has no config.json"),
        ("bad_config", r"config.json:2:\d+: invalid JSON"),
        ("no_weights", "has no \\*.safetensors weights"),
        ("missing_shard", "lists shard 'model-00002-of-0000\\d.safetensors', which is missing"),
        ("truncated", "truncated: tensor"),
    ],
)
def test_broken_directories(base, root, tmp_path, damage, message):
    d = root / damage
    shutil.copytree(base, d)
    shards = sorted(d.glob("model-*.safetensors"))
    if damage == "no_config":
        (d / "config.json").unlink()
    elif damage == "bad_config":
        (d / "config.json").write_text('{\n  "model_type": gpt2\n}')
    elif damage == "no_weights":
        for f in shards:
            f.unlink()
        (d / "model.safetensors.index.json").unlink()
    elif damage == "missing_shard":
        shards[1].unlink()
    elif damage == "truncated":
        os.truncate(shards[0], shards[0].stat().st_size - 100)
    with pytest.raises(OpError, match=message) as e:
        pretrained.fn(pretrained.params(path=str(d)), OpContext(tmp_path / "p"))
    assert e.value.field == "path"
    err = merge_error(tmp_path / "m", [base, d])
    assert err.field == "models.1" and err.message == e.value.message


def test_architectures_differ(base, root, tmp_path):
    other = save_tiny(root / "llama", kind="llama", seed=1, tokenizer=False)
    err = merge_error(tmp_path, [base, other])
    assert err.field == "models.1"
    assert err.message == "architectures differ: this model is LlamaForCausalLM but the first model is GPT2LMHeadModel"


def test_vocabulary_mismatch_is_explained(base, root, tmp_path):
    other = save_tiny(root / "vocab", seed=1, vocab=100, tokenizer=False)
    err = merge_error(tmp_path, [base, other])
    assert err.field == "models.1"
    assert err.message.startswith("vocabulary sizes differ: this model has 100 tokens, the first model 96")
    assert "'transformer.wte.weight' is [100, 32] here, [96, 32] there" in err.message
    assert "tokenizer" in err.hint


def test_first_mismatching_shape_is_named(base, root, tmp_path):
    other = save_tiny(root / "positions", seed=1, positions=32, tokenizer=False)
    err = merge_error(tmp_path, [base, other, base], {"op": "add", "args": [M0, {"model": 1}]})
    assert err.field == "models.1"
    assert err.message == (
        "tensor 'transformer.wpe.weight' has shape [32, 32] in this model but [64, 32] in the first model"
    )


def test_different_tensor_names(base, root, tmp_path):
    deeper = save_tiny(root / "deeper", seed=1, layers=3, tokenizer=False)
    err = merge_error(tmp_path, [deeper, base])
    assert err.field == "models.1"
    assert "tensor 'transformer.h.2." in err.message and "is missing from this model" in err.message
    err = merge_error(tmp_path / "2", [base, deeper])
    assert "this model has tensor 'transformer.h.2." in err.message and "which the first model lacks" in err.message


def test_operand_field_paths_of_direct_calls(base, root, tmp_path):
    from expc.runtime.ops.merge import ties
    from expc.runtime.values import ModelDir

    other = root / "positions"
    if not other.exists():
        save_tiny(other, seed=1, positions=32, tokenizer=False)
    p = ties.params(base=ModelDir(path=base), models=[ModelDir(path=base), ModelDir(path=other)])
    with pytest.raises(OpError) as e:
        ties.fn(p, OpContext(tmp_path))
    assert e.value.field == "models.1"


def test_nan_in_an_output_tensor_names_it(base, root, tmp_path):
    # m1 / (m1 - base): the position embeddings of two copies of base are equal, so 0/0 = NaN there
    copy = root / "copy"
    if not copy.exists():
        shutil.copytree(base, copy)
    tree = {"op": "div", "args": [M1, {"op": "sub", "args": [M1, M0]}]}
    ctx = OpContext(tmp_path)
    with pytest.raises(OpError, match=r"tensor '[\w.]+' of the merged model has \d+ NaN or infinite") as e:
        run_algebra([base, copy], tree, ctx)
    assert e.value.field == "expr"


def test_fp16_overflow_is_an_error(base, tmp_path):
    tree = {"op": "call", "name": "cast", "args": {"model": {"op": "mul", "args": [1e6, M0]}, "dtype": "float16"}}
    with pytest.raises(OpError, match="NaN or infinite"):
        run_algebra([base], tree, OpContext(tmp_path))


def test_index_metadata_is_consistent(base, tmp_path):
    out = run_algebra([base, base], AVG, OpContext(tmp_path), max_shard_bytes=30_000)
    index = json.loads((out.path / "model.safetensors.index.json").read_text())
    files = {p.name for p in out.path.glob("*.safetensors")}
    assert set(index["weight_map"].values()) == files and len(files) > 1
    assert index["metadata"]["total_size"] == sum(v.numel() * 4 for v in state_dict(out.path).values())
