"""The classifier training loop behind `fit`: minibatches of a `tensors` data set (or their adversarial
versions under an attack value), cross-entropy of logits / temperature (or squared error against
one-hot labels), an optimizer value, checkpoints.

Determinism: batch i of epoch e is slice i of a permutation drawn from (seed, e) alone, so a step's
batch is a function of the step; dropout draws from torch's global RNG, seeded with `seed` and kept
in checkpoints; the thread count is a function of the network and the machine (`threads_for`). A run
resumed from a checkpoint therefore ends with the same weights as an uninterrupted one.

Cost per step: nothing beyond the hand-written loop but two list appends; the pending losses and
logits are read every `log_every` steps (one sync), which is also where non-finite losses are caught,
the training accuracy is counted, progress advances and cancellation is checked (the same scheme as
the fine-tuning loop).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from expc.runtime.api import Cancelled, OpError, node_seed
from expc.runtime.train import checkpoint
from expc.runtime.train.loop import lr_at
from expc.runtime.train.modeling import autocast
from expc.runtime.train.optim import build_optimizer, descend


@dataclass(frozen=True)
class FitConfig:
    steps: int
    batch: int
    lr: float  # the optimizer's peak lr: the schedule scales it
    optimizer: Any  # an optimizer value of runtime/ops/optim.py
    loss: str = "ce"
    temperature: float = 1.0
    schedule: str = "constant"
    warmup: int = 0
    clip: float = 0.0
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    validate_every: int = 0  # 0: only at the end
    dtype: str = "float32"
    adversarial: Any = None  # an attack value of runtime/ops/attacks.py: train on its adversarial batches
    input_range: tuple[float, float] = (0.0, 1.0)  # the data's [lo, hi], the units of the attack's eps
    classes: int = 0


SMALL_NET = 1_000_000  # parameters


def threads_for(net, workers: int) -> int:
    """torch's thread count for a classifier: one below SMALL_NET parameters, where intra-op threads
    cost more than they save (measured on the 2-core machine under load: an MLP step took 1.3 ms with
    one thread, 30-70 ms with two), else expc.runtime.train.loop.set_threads. A function of the
    architecture and the machine, never of the load, so results stay a function of the node's key."""
    from expc.runtime.train.loop import set_threads

    if os.environ.get("EXPC_THREADS") or sum(p.numel() for p in net.parameters()) >= SMALL_NET:
        return set_threads(workers)
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return 1


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The example order of one epoch: a permutation that depends on (seed, epoch) only."""
    gen = torch.Generator().manual_seed((seed * 0x9E3779B97F4A7C15 + epoch) % 2**63)
    return torch.randperm(n, generator=gen)


def batch_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, temperature: float, reduction: str = "mean"):
    """Cross-entropy of logits / temperature, or the squared error between logits / temperature and
    the one-hot labels (summed over classes); averaged (or summed) over examples."""
    z = logits if logits.dtype == torch.float32 else logits.float()
    if temperature != 1.0:
        z = z / temperature
    if loss == "ce":
        return F.cross_entropy(z, y, reduction=reduction)
    err = (z - F.one_hot(y, z.shape[1]).to(z.dtype)).square().sum(1)
    return err.mean() if reduction == "mean" else err.sum()


@torch.no_grad()
def evaluate(net, X: torch.Tensor, y: torch.Tensor, cfg: FitConfig, device: str,
             batch: int = 1024) -> tuple[float, float]:
    """(mean loss, accuracy) of `net` on (X, y), in eval mode, without gradients."""
    was_training = net.training
    net.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    hits = torch.zeros((), dtype=torch.int64, device=device)
    for i in range(0, len(X), batch):
        with autocast(device, cfg.dtype):
            logits = net(X[i : i + batch])
        total += batch_loss(logits, y[i : i + batch], cfg.loss, cfg.temperature, "sum").double()
        hits += (logits.argmax(1) == y[i : i + batch]).sum()
    net.train(was_training)
    return float(total) / len(X), int(hits) / len(X)


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _finite(net) -> bool:
    return bool(torch.stack([torch.isfinite(p).all() for p in net.parameters()]).all())  # one sync


def fit_loop(net, X: torch.Tensor, y: torch.Tensor, cfg: FitConfig, ctx, device: str, work_dir: Path | None,
             validation: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """Train `net` in place on (X, y) (on `device`). Resumes from `work_dir` if it holds a checkpoint.
    Returns {"steps", "resumed_from", "final_loss", "final_accuracy"}."""
    torch.manual_seed(cfg.seed)  # dropout
    opt = build_optimizer(cfg.optimizer, net.parameters())
    start = 0
    if work_dir is not None:
        restored = checkpoint.load(work_dir, net, opt)
        if restored is not None:
            start, rng, _ = restored
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and device.startswith("cuda"):
                torch.cuda.set_rng_state(rng["cuda"])

    n = len(X)
    per_epoch = math.ceil(n / cfg.batch)
    advance = ctx.progress(cfg.steps, f"fit {ctx.node}")
    if start:
        advance(start)
    net.train()
    # the pending steps' losses, logits and labels, read at the next log step: appending costs no
    # kernel launch, where accumulating on the device would cost several per step
    losses: list[torch.Tensor] = []
    outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
    pending = 0
    order, order_epoch, last_lr = None, -1, None
    mixed = cfg.dtype != "float32"
    if cfg.adversarial is not None:
        from expc.runtime.attacks.build import perturb
    summary = {"steps": cfg.steps, "resumed_from": start, "final_loss": float("nan"), "final_accuracy": float("nan")}
    step = start
    try:
        for step in range(start, cfg.steps):
            epoch, i = divmod(step, per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(cfg.seed, epoch, n).to(device), epoch
            idx = order[i * cfg.batch : (i + 1) * cfg.batch]
            xb, yb = X[idx], y[idx]
            if cfg.adversarial is not None:  # seeded by (seed, step): a resumed run attacks alike
                xb = perturb(net, xb, yb, cfg.adversarial, *cfg.input_range, classes=cfg.classes,
                             temperature=cfg.temperature, seed=cfg.seed * 1_000_003 + step)
            lr = lr_at(step, cfg)
            if lr != last_lr:
                for group in opt.param_groups:
                    group["lr"] = lr
                last_lr = lr
            if mixed:
                with autocast(device, cfg.dtype):
                    logits = net(xb)
            else:
                logits = net(xb)
            loss = batch_loss(logits, yb, cfg.loss, cfg.temperature)
            descend(opt, loss, net, cfg.clip)
            losses.append(loss.detach())
            outputs.append((logits.detach(), yb))
            pending += 1
            done = step + 1
            checkpoint_now = work_dir is not None and done % cfg.checkpoint_every == 0 and done < cfg.steps
            read_now = pending == cfg.log_every or done == cfg.steps or checkpoint_now
            if read_now:
                values = torch.stack(losses).tolist()
                for j, v in enumerate(values):
                    if not math.isfinite(v):
                        _diverged(ctx, cfg, done - pending + j + 1, v, work_dir)
                summary["final_loss"] = sum(values) / len(values)
                logits_seen, labels = torch.cat([o for o, _ in outputs]), torch.cat([t for _, t in outputs])
                summary["final_accuracy"] = int((logits_seen.argmax(1) == labels).sum()) / len(labels)
                ctx.log("loss", summary["final_loss"], done)
                ctx.log("accuracy", summary["final_accuracy"], done)
                advance(pending)
                losses.clear()
                outputs.clear()
                pending = 0
                if (checkpoint_now or done == cfg.steps) and not _finite(net):
                    # the last update broke the weights: keep the last good checkpoint
                    _diverged(ctx, cfg, done, float("nan"), work_dir, weights=True)
            if validation is not None and (done == cfg.steps or cfg.validate_every and done % cfg.validate_every == 0):
                vloss, vacc = evaluate(net, *validation, cfg, device)
                ctx.log("val_loss", vloss, done)
                ctx.log("val_accuracy", vacc, done)
            if read_now and done < cfg.steps:
                ctx.check_cancelled()
                if checkpoint_now:
                    checkpoint.save(work_dir, done, net, opt, _rng_state())
    except Cancelled:
        # keep the work done so far (only at a step whose results were read, hence checked)
        if work_dir is not None and pending == 0 and step + 1 > start and _finite(net):
            checkpoint.save(work_dir, step + 1, net, opt, _rng_state())
        raise
    net.eval()
    return summary


def _diverged(ctx, cfg: FitConfig, step: int, value: float, work_dir: Path | None, weights: bool = False):
    kept = ""
    if work_dir is not None and (Path(work_dir) / checkpoint.INDEX).exists():
        kept = " (the last good checkpoint is kept)"
    what = "the weights are not finite after" if weights else f"training loss is {value} at"
    raise OpError(f"{ctx.node}: {what} step {step} (lr {lr_at(step - 1, cfg):.3g}){kept}", field="optimizer",
                  hint="lower the learning rate, add warmup or clip, or check the data")


def run_fit(p, ctx):
    """The `fit` operator (runtime/ops/fit.py): build or load the network, train it, save it."""
    from expc.runtime.data.values import TextData

    if getattr(p.model, "trains_on_text", False) or isinstance(p.data, TextData):
        from expc.runtime.train.rnn_fit import run_rnn_fit  # a recurrent LM (rnn_lm(...)) on text

        return run_rnn_fit(p, ctx)
    from expc.runtime.ops.plastic import RecurrentArch

    if isinstance(p.model, RecurrentArch) or getattr(p.data, "tag", None) == "episodes":
        from expc.runtime.plastic.train import run_fit_episodes  # recurrent nets on episodes

        return run_fit_episodes(p, ctx)
    from expc.runtime.nets.build import build
    from expc.runtime.nets.load import config_of, load_classifier, save_classifier
    from expc.runtime.ops.nets import CLASSIFIER_DEFAULTS, Architecture
    from expc.runtime.ops.optim import describe
    from expc.runtime.train.optim import peak_lr, with_lr

    device = ctx.device
    data = p.data
    shape, classes, input_range = list(data.shape), int(data.classes), (float(data.lo), float(data.hi))
    if isinstance(p.model, Architecture):
        arch = p.model.arch(CLASSIFIER_DEFAULTS)
        bad = p.model.check_data(shape, classes)
        if bad is not None:
            raise OpError(bad[1], field=bad[0])
        try:
            net = build(arch, shape, classes, input_range, seed=node_seed(p.seed, ctx.seed))
        except ValueError as e:
            raise OpError(str(e), field="model") from None
    else:  # continue training a classifier
        net, config = load_classifier(p.model, "cpu")
        arch, classes, input_range = config["net"], int(config["classes"]), tuple(config["input_range"])
        _check_fits(data, config, "data")
    if p.validation is not None and p.validation.shape != shape:
        raise OpError(f"the validation examples have shape {p.validation.shape}, the training examples {shape}",
                      field="validation")
    threads_for(net, ctx.workers)
    net.to(device)

    def arrays(d, field: str):
        X, y = d.load()
        if len(y) and int(y.max()) >= classes:
            raise OpError(f"label {int(y.max())} is not a class of the classifier ({classes} classes)", field=field)
        return torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)

    X, y = arrays(data, "data")
    validation = arrays(p.validation, "validation") if p.validation is not None else None
    steps = p.steps if p.steps is not None else p.epochs * math.ceil(len(X) / p.batch)
    lr = peak_lr(p.optimizer)
    cfg = FitConfig(
        steps=steps, batch=p.batch, lr=lr, optimizer=with_lr(p.optimizer, lr), loss=p.loss,
        temperature=p.temperature, schedule=p.schedule, warmup=p.warmup, clip=p.clip,
        seed=node_seed(p.seed, ctx.seed),
        checkpoint_every=p.checkpoint_every, validate_every=p.validate_every or 0, dtype=ctx.dtype,
        adversarial=p.adversarial, input_range=(float(data.lo), float(data.hi)), classes=classes,
    )
    if cfg.warmup >= steps and cfg.warmup > 0:
        ctx.warn(f"warmup ({cfg.warmup}) covers every step ({steps})", field="warmup")
    fit_loop(net, X, y, cfg, ctx, device, ctx.work_dir, validation)
    training = {"optimizer": describe(cfg.optimizer), "loss": p.loss, "temperature": p.temperature, "steps": steps,
                "batch": p.batch, "seed": p.seed, "data": data.source}
    if p.adversarial is not None:
        training["adversarial"] = p.adversarial.describe()
    return save_classifier(net, config_of(arch, shape, classes, input_range, training), ctx.out_dir)


def _check_fits(data, config: dict, field: str) -> None:
    if list(data.shape) != list(config["input_shape"]):
        raise OpError(f"the classifier takes examples of shape {config['input_shape']}, the data has "
                      f"{list(data.shape)}", field=field)
