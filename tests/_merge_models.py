"""Tiny random Hugging Face models saved as safetensors, and full-state-dict references, for the merge
tests (tests/test_merge_*.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file


def tiny_config(kind: str = "gpt2", vocab: int = 96, hidden: int = 32, layers: int = 2, positions: int = 64):
    from transformers import GPT2Config, LlamaConfig

    if kind == "gpt2":
        return GPT2Config(
            vocab_size=vocab, n_positions=positions, n_embd=hidden, n_layer=layers, n_head=2,
            bos_token_id=0, eos_token_id=1,
        )  # fmt: skip
    return LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=positions,
        bos_token_id=0, eos_token_id=1, tie_word_embeddings=False,
    )  # fmt: skip


def save_tiny(path: Path, kind: str = "gpt2", seed: int = 0, shard: str | None = None, tokenizer: bool = True,
              **cfg) -> Path:  # fmt: skip
    """A randomly initialised model (seeded) saved with save_pretrained (safetensors)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(kind, **cfg))
    # Norm weights start at exactly 1 in every model; perturb them so that every tensor differs.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.05 * torch.randn_like(p))
    path = Path(path)
    kw = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(path, **kw)
    if tokenizer:
        save_tokenizer(path, cfg.get("vocab", 96))
    return path


def save_tokenizer(path: Path, vocab: int) -> None:
    """A real (word-level) fast tokenizer whose ids fit the model's vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<eos>"] + [f"w{i}" for i in range(vocab - 2)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>").save_pretrained(path)


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a saved model directory (all shards), as stored."""
    path = Path(path)
    out: dict[str, torch.Tensor] = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def stored_dtypes(path: Path) -> set[str]:
    dtypes = set()
    for f in Path(path).glob("*.safetensors"):
        raw = f.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + n])
        dtypes |= {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    return dtypes


def max_err(merged: dict, ref: dict) -> float:
    assert set(merged) == set(ref), set(merged) ^ set(ref)
    return max((merged[k].float() - ref[k].float()).abs().max().item() for k in ref)


# -- expression trees of the algebra operator (runtime/merge/FORMULAS.md) ------------------------------

M0, M1, M2 = {"model": 0}, {"model": 1}, {"model": 2}


def add(*a):
    return {"op": "add", "args": list(a)}


def sub(a, b):
    return {"op": "sub", "args": [a, b]}


def mul(a, b):
    return {"op": "mul", "args": [a, b]}


def div(a, b):
    return {"op": "div", "args": [a, b]}


def call(name, **args):
    return {"op": "call", "name": name, "args": args}


DEM = add(add(M0, mul(0.5, sub(M1, M0))), mul(0.3, sub(M2, M0)))


def sharded_trio(root: Path) -> list[Path]:
    """Three tiny GPT-2 models: base sharded (with an index), m1 a single file, m2 sharded differently."""
    return [
        save_tiny(root / "base", seed=0, shard="20KB"),
        save_tiny(root / "m1", seed=1),
        save_tiny(root / "m2", seed=2, shard="50KB"),
    ]
