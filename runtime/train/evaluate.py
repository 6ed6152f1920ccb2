"""Held-out loss of a causal LM on a token stream, over the deterministic tiling of
expc.runtime.train.tokens (every token after the first predicted once)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from expc.runtime.train.modeling import autocast
from expc.runtime.train.tokens import tiled_windows


@torch.inference_mode()
def stream_loss(lm, stream: torch.Tensor, context: int, batch: int, device: str,
                dtype: str = "float32") -> tuple[float, int]:
    """(mean next-token cross-entropy in nats, number of predicted tokens); forward passes under
    autocast in `dtype` (the experiment's), the loss summed in float64."""
    was_training = lm.training
    lm.eval()
    full, tail = tiled_windows(stream, context)
    total = torch.zeros((), dtype=torch.float64, device=device)
    for i in range(0, full.shape[0], batch):
        w = full[i : i + batch].to(device)
        with autocast(device, dtype):
            logits = lm(input_ids=w[:, :-1]).logits
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), w[:, 1:].reshape(-1), reduction="sum")
    if tail is not None:
        w = tail[None].to(device)
        with autocast(device, dtype):
            logits = lm(input_ids=w[:, :-1]).logits
        total += F.cross_entropy(logits[0].float(), w[0, 1:], reduction="sum")
    if was_training:
        lm.train()
    n = stream.numel() - 1
    return float(total) / n, n


def metrics(nats_per_token: float, n_tokens: int, n_bytes: int) -> dict:
    nats_per_byte = nats_per_token * n_tokens / max(1, n_bytes)
    return {
        "nats_per_token": nats_per_token,
        "nats_per_byte": nats_per_byte,
        "bits_per_byte": nats_per_byte / math.log(2),
        "perplexity": math.exp(min(nats_per_token, 700.0)),
        "tokens": n_tokens,
        "bytes": n_bytes,
    }
