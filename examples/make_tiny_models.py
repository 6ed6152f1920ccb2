"""Regenerate examples/models/{base,m1,m2}: a tiny random GPT-2 and two stand-ins for its fine-tunes.

    python examples/make_tiny_models.py

base is a randomly initialised 2-layer GPT-2 (seed 0); m1 and m2 are base plus small seeded
perturbations (task vectors), so that merges of them behave like merges of fine-tunes. Each is saved
with save_pretrained (safetensors) together with a small word-level tokenizer. ~110 KB per model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent / "models"
VOCAB = 64


def tokenizer() -> PreTrainedTokenizerFast:
    words = ["<unk>", "<eos>"] + [f"w{i}" for i in range(VOCAB - 2)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")


def main() -> None:
    config = GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=1,
                        eos_token_id=1)  # fmt: skip
    torch.manual_seed(0)
    base = GPT2LMHeadModel(config)
    tok = tokenizer()
    for name, seed in (("base", None), ("m1", 1), ("m2", 2)):
        model = GPT2LMHeadModel(config)
        model.load_state_dict(base.state_dict())
        if seed is not None:
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.01 * torch.randn(p.shape, generator=g))
        out = HERE / name
        shutil.rmtree(out, ignore_errors=True)
        model.save_pretrained(out)
        tok.save_pretrained(out)
        print(out, sum(f.stat().st_size for f in out.iterdir()) // 1024, "KB")


if __name__ == "__main__":
    main()
