"""The fine-tuning loop: plain PyTorch on a transformers causal LM, resumable from checkpoints.

Each step: set the scheduled learning rate, sample `batch` windows (see expc.runtime.train.tokens),
next-token cross-entropy, backward, optional gradient clipping, optimizer step. Losses stay on the
device and are read every `log_every` steps (one sync), which is also where non-finite losses are
caught (the error names the exact step), progress advances and cancellation is checked.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from expc.runtime.api import Cancelled, OpError
from expc.runtime.train import checkpoint
from expc.runtime.train.modeling import autocast
from expc.runtime.train.optim import descend
from expc.runtime.train.tokens import sample_windows


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    lr: float
    batch: int
    context: int
    optimizer: Any = "adamw"  # a name, or an optimizer value of runtime/ops/optim.py (its lr is `lr`)
    schedule: str = "cosine"
    warmup: int = 0
    weight_decay: float = 0.0
    clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    dtype: str = "float32"  # forward passes under autocast in this dtype (see modeling.autocast)


def set_threads(workers: int = 1) -> int:
    """torch's intra-op thread count: the cores shared among `workers`, a function of the machine and
    the experiment only. It must not depend on how busy the machine is: float32 results differ
    between thread counts (measured: a 60-step fine-tune gives different weights with 1 and 2
    threads), and a node's result must be a function of its key. `EXPC_THREADS` overrides (and so
    may change results, like running on another machine)."""
    forced = os.environ.get("EXPC_THREADS")
    if forced:
        n = max(1, int(forced))
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        n = max(1, cores // max(1, workers))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over `warmup` steps, then cosine / linear decay to 0, or constant."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.schedule == "linear":
        return cfg.lr * (1.0 - progress)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """`cfg.optimizer`: a name ("adamw", "adam", "sgd") or an optimizer value (sgd/adam/fop params)."""
    from expc.runtime.train.optim import build_optimizer, named_optimizer

    if isinstance(cfg.optimizer, str):
        return named_optimizer(cfg.optimizer, params, cfg.lr, cfg.weight_decay)
    return build_optimizer(cfg.optimizer, params)


def _rng_state(gen: torch.Generator, device: str) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state(), "data": gen.get_state()}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(rng: dict[str, torch.Tensor], gen: torch.Generator, device: str) -> None:
    torch.set_rng_state(rng["torch"])
    gen.set_state(rng["data"])
    if device.startswith("cuda") and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"])


def train(lm, stream: torch.Tensor, cfg: TrainConfig, ctx, device: str, work_dir: Path | None) -> dict:
    """Train `lm` in place on the token stream. Resumes from `work_dir` if it holds a checkpoint.
    Returns a summary: {"steps", "resumed_from", "final_loss"}."""
    vocab = lm.config.vocab_size
    if int(stream.max()) >= vocab:
        raise OpError(f"the data has token id {int(stream.max())} but the model's vocabulary has {vocab}", field="data")
    # The stream stays on the CPU, where the data generator draws offsets; each batch moves to `device`.
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # dropout, if the model has any
    opt = make_optimizer(lm.parameters(), cfg)

    start = 0
    if work_dir is not None:
        restored = checkpoint.load(work_dir, lm, opt)
        if restored is not None:
            start, rng, _ = restored
            _set_rng_state(rng, gen, device)

    advance = ctx.progress(cfg.steps, f"finetune {ctx.node}")
    if start:
        advance(start)
    lm.train()
    losses = torch.zeros(cfg.log_every, device=device)
    pending = 0  # steps whose loss is in `losses` but not yet read
    final_loss = float("nan")
    step = start
    try:
        for step in range(start, cfg.steps):
            lr = lr_at(step, cfg)
            for group in opt.param_groups:
                group["lr"] = lr
            windows = sample_windows(stream, cfg.batch, cfg.context, gen).to(device, non_blocking=True)
            with autocast(device, cfg.dtype):
                logits = lm(input_ids=windows[:, :-1]).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
            descend(opt, loss, lm, cfg.clip)
            losses[pending] = loss.detach()
            pending += 1
            done = step + 1
            if pending == cfg.log_every or done == cfg.steps or done % cfg.checkpoint_every == 0:
                values = losses[:pending].tolist()
                for i, v in enumerate(values):
                    if not math.isfinite(v):
                        bad = done - pending + i + 1
                        raise OpError(
                            f"{ctx.node}: training loss is {v} at step {bad} (lr {lr_at(bad - 1, cfg):.3g})",
                            field="lr" if isinstance(cfg.optimizer, str) else "optimizer",
                            hint="lower lr, add warmup, or check the data",
                        )
                final_loss = sum(values) / len(values)
                ctx.log("loss", final_loss, done)
                advance(pending)
                pending = 0
                if done == cfg.steps:
                    break
                ctx.check_cancelled()
                if work_dir is not None and done % cfg.checkpoint_every == 0:
                    checkpoint.save(work_dir, done, lm, opt, _rng_state(gen, device))
    except Cancelled:
        # Keep the work done so far: a rerun continues from here.
        if work_dir is not None and pending == 0 and step + 1 > start:
            checkpoint.save(work_dir, step + 1, lm, opt, _rng_state(gen, device))
        raise
    lm.eval()
    return {"steps": cfg.steps, "resumed_from": start, "final_loss": final_loss}
