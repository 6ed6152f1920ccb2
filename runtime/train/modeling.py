"""Building, saving and loading causal LMs as Hugging Face directories (safetensors, no pickle)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from expc.runtime.api import OpError
from expc.runtime.train.tokens import Tokenizer, tokenizer_of
from expc.runtime.values import ModelDir


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def build_gpt2(layers: int, width: int, heads: int, context: int, vocab: int, seed: int, dropout: float = 0.0):
    """A randomly initialised transformers GPT-2 (deterministic in `seed`)."""
    _quiet_transformers()
    from transformers import GPT2Config, GPT2LMHeadModel

    sep = 10 if vocab >= 256 else None
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=context,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        n_inner=4 * width,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=sep,
        eos_token_id=sep,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model


def save_model(model, out_dir: Path, tokenizer: Tokenizer) -> ModelDir:
    """Write `model` as config.json + model.safetensors (+ tokenizer record) into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    arch = (getattr(model.config, "architectures", None) or [type(model).__name__])[0]
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return ModelDir(path=out_dir, architecture=arch, dtype=dtype, n_params=n_params)


def load_model(model: ModelDir, device: str = "cpu"):
    """(transformers causal LM on `device`, in train mode off, its Tokenizer)."""
    _quiet_transformers()
    from transformers import AutoModelForCausalLM

    path = Path(model.path)
    if not (path / "config.json").exists():
        raise OpError(f"{path}: not a model directory (no config.json)", field="model")
    try:
        lm = AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True, local_files_only=True)
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: cannot load the model as a causal LM: {e}", field="model") from None
    lm.to(device)
    lm.eval()
    return lm, tokenizer_of(path, lm.config.vocab_size)


def context_of(lm) -> int:
    """The longest input the model accepts (n_positions / max_position_embeddings)."""
    cfg = lm.config
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    raise OpError("cannot tell the model's context length from its config", field="model")


def load_for_context(model: ModelDir, context: int | None, ctx):
    """(model, tokenizer, context) for an operator with a `context` field (default: the model's own),
    on ctx.device with the thread count set: what finetune, loss and perplexity all start with."""
    from expc.runtime.train.loop import set_threads

    set_threads(ctx.workers)
    lm, tok = load_model(model, ctx.device)
    max_context = context_of(lm)
    context = context or max_context
    if context > max_context:
        raise OpError(f"context = {context} exceeds the model's context of {max_context}", field="context")
    return lm, tok, context


def autocast(device: str, dtype: str):
    """The experiment's `dtype` as mixed precision: forward passes run under torch.autocast in that
    dtype while weights, optimizer state and losses stay float32 (float32: no autocast at all)."""
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=getattr(torch, dtype))
