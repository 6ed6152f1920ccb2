"""The fine-tuning loop: plain PyTorch on a transformers causal LM, resumable from checkpoints.

Each step: set the scheduled learning rate, sample `batch` windows (see expc.runtime.train.tokens),
next-token cross-entropy, backward, optional gradient clipping, optimizer step. Losses stay on the
device and are read every `log_every` steps (one sync), which is also where non-finite losses are
caught (the error names the exact step), progress advances and cancellation is checked.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from expc.runtime.api import Cancelled, OpError
from expc.runtime.train import checkpoint
from expc.runtime.train.modeling import autocast
from expc.runtime.train.tokens import sample_windows


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    lr: float
    batch: int
    context: int
    optimizer: str = "adamw"
    schedule: str = "cosine"
    warmup: int = 0
    weight_decay: float = 0.0
    clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    dtype: str = "float32"  # forward passes under autocast in this dtype (see modeling.autocast)


def set_threads(workers: int = 1) -> int:
    """Pick torch's intra-op thread count: the cores shared among `workers`, but one thread when
    other processes are busy on the CPU right now. Tiny models run hundreds of small parallel regions
    per step; when another process takes one of our cores each region waits for a time slice, which
    measured 10x slower than one thread on a busy 2-core machine. `EXPC_THREADS` overrides."""
    forced = os.environ.get("EXPC_THREADS")
    if forced:
        n = max(1, int(forced))
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        n = max(1, cores // max(1, workers))
        if n > 1:
            n = max(1, min(n, cores - _busy_elsewhere()))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


_busy_cache: tuple[float, int] = (-1e9, 0)


def _busy_elsewhere(samples: int = 5, interval: float = 0.01) -> int:
    """Threads of other processes running now (median of a few samples of /proc; cached 5 s)."""
    global _busy_cache
    now = time.monotonic()
    if now - _busy_cache[0] < 5.0:
        return _busy_cache[1]
    counts = []
    try:
        for i in range(samples):
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
            own = 0
            for tid in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{tid}/stat") as f:
                        own += f.read().rsplit(")", 1)[1].split()[0] == "R"
                except OSError:
                    pass
            counts.append(max(0, running - own))
            if i + 1 < samples:
                time.sleep(interval)
    except (OSError, ValueError, IndexError):
        return 0  # not Linux: assume an idle machine
    busy = sorted(counts)[len(counts) // 2]
    _busy_cache = (now, busy)
    return busy


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
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


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
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(lm.parameters(), cfg.clip)
            opt.step()
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
                            field="lr",
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
