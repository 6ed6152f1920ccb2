"""gpt2(...) builds a real transformers GPT-2 saved as a Hugging Face directory."""

from __future__ import annotations

import json

import pytest
from _opctx import OpContext, run
from pydantic import ValidationError
from safetensors.torch import load_file

from expc.runtime.api import OpError
from expc.runtime.ops import models as M


def test_gpt2_config_and_files(tmp_path):
    m = run(M.gpt2, OpContext(tmp_path / "m"), layers=2, width=48, heads=4, context=40)
    files = sorted(p.name for p in m.path.iterdir())
    assert "config.json" in files and "model.safetensors" in files and "expc_tokenizer.json" in files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    cfg = json.loads((m.path / "config.json").read_text())
    assert (cfg["n_layer"], cfg["n_embd"], cfg["n_head"], cfg["n_positions"], cfg["vocab_size"]) == (2, 48, 4, 40, 256)
    assert cfg["architectures"] == ["GPT2LMHeadModel"] and m.architecture == "GPT2LMHeadModel"
    assert json.loads((m.path / "expc_tokenizer.json").read_text()) == {"kind": "bytes"}
    tensors = load_file(str(m.path / "model.safetensors"))
    assert tensors["transformer.wte.weight"].shape == (256, 48)
    assert tensors["transformer.wpe.weight"].shape == (40, 48)
    assert tensors["transformer.h.1.mlp.c_fc.weight"].shape == (48, 4 * 48)
    # parameters: embeddings + 2 blocks + final norm (the LM head is tied to wte)
    per_block = 2 * 2 * 48 + (48 * 3 * 48 + 3 * 48) + (48 * 48 + 48) + (48 * 192 + 192) + (192 * 48 + 48)
    assert m.n_params == 256 * 48 + 40 * 48 + 2 * per_block + 2 * 48


def test_gpt2_seeded(tmp_path):
    def weights(name, seed):
        m = run(M.gpt2, OpContext(tmp_path / name), layers=1, width=16, heads=2, context=8, seed=seed)
        return load_file(str(m.path / "model.safetensors"))["transformer.h.0.attn.c_attn.weight"]

    a, b, c = weights("a", 0), weights("b", 0), weights("c", 1)
    assert (a == b).all() and not (a == c).all()


def test_gpt2_loads_as_causal_lm(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    m = run(M.gpt2, OpContext(tmp_path / "m"), layers=1, width=16, heads=2, context=8)
    lm = AutoModelForCausalLM.from_pretrained(str(m.path))
    out = lm(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert out.shape == (1, 3, 256)


def test_gpt2_param_errors(tmp_path):
    with pytest.raises(ValidationError) as e:
        M.gpt2.params(layers=1, width=30, heads=4, context=8)
    assert e.value.errors()[0]["loc"] == ("heads",) and "must divide width = 30" in str(e.value)
    with pytest.raises(OpError, match="too small for byte-level"):
        run(M.gpt2, OpContext(tmp_path / "m2"), layers=1, width=16, heads=2, context=8, vocab=100)
    with pytest.raises(ValidationError):
        M.gpt2.params(layers=0, width=16, heads=2, context=8)
    with pytest.raises(OpError, match="no such tokenizer directory"):
        run(M.gpt2, OpContext(tmp_path / "m3"), layers=1, width=16, heads=2, context=8, tokenizer=str(tmp_path / "x"))
