"""The outer loop shared by `gtn` and `petri_dish`: an optimizer on the meta-parameters (a generator,
learned points, a learned learning rate), one outer loss per step, logs, checkpoints, resume.

Every draw of an outer step (a learner's initialization, noise, a real batch) is seeded by (seed,
step), so a step is a function of the meta-parameters and the step number alone: a run resumed from
a checkpoint (meta-parameters and optimizer state, expc.runtime.train.checkpoint) ends exactly where
an uninterrupted one does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from expc.runtime.api import Cancelled, OpError
from expc.runtime.train import checkpoint


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A seed for draw `stream` of outer step `step`."""
    return (int(seed) * 1_000_003 + int(step) * 7_919 + int(stream) * 104_729 + 17) % (2**63 - 1)


def draw(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def meta_train(meta: torch.nn.Module, opt: torch.optim.Optimizer, steps: int, outer_loss: Callable[[int], torch.Tensor],
               ctx, every: int, what: str, log_every: int = 10,
               extra_logs: Callable[[], dict[str, float]] | None = None) -> dict:
    """Minimize outer_loss(step) over `meta`'s parameters for `steps` steps, resuming from ctx.work_dir.
    Logs `meta_loss` (the mean over each `log_every` steps) and extra_logs(); checkpoints every `every`
    steps. Returns {"steps", "resumed_from", "final_loss"}."""
    work_dir: Path | None = ctx.work_dir
    start = 0
    if work_dir is not None:
        restored = checkpoint.load(work_dir, meta, opt)
        if restored is not None:
            start = restored[0]
    advance = ctx.progress(steps, f"{what} {ctx.node}")
    if start:
        advance(start)
    pending: list[torch.Tensor] = []
    summary = {"steps": steps, "resumed_from": start, "final_loss": float("nan")}
    step = start
    try:
        for step in range(start, steps):
            loss = outer_loss(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            pending.append(loss.detach())
            done = step + 1
            if len(pending) == log_every or done == steps:
                values = torch.stack(pending).tolist()
                bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
                if bad is not None:
                    at = done - len(values) + bad + 1
                    raise OpError(f"{ctx.node}: the meta-loss is {values[bad]} at outer step {at}", field="outer",
                                  hint="lower the outer or inner learning rate, or take fewer inner steps")
                summary["final_loss"] = sum(values) / len(values)
                ctx.log("meta_loss", summary["final_loss"], done)
                for name, value in (extra_logs() if extra_logs else {}).items():
                    ctx.log(name, value, done)
                advance(len(pending))
                pending.clear()
                if done < steps:
                    ctx.check_cancelled()
                    if work_dir is not None and done % every == 0:
                        checkpoint.save(work_dir, done, meta, opt, {})
            elif work_dir is not None and done % every == 0 and done < steps:
                checkpoint.save(work_dir, done, meta, opt, {})
    except Cancelled:
        if work_dir is not None and not pending and step + 1 > start:
            checkpoint.save(work_dir, step + 1, meta, opt, {})
        raise
    return summary
