"""`fit` on `episodes` (runtime/train/fit.py's run_fit hands over here): backpropagation through each
whole episode. A batch of episodes runs in parallel from zero state (and zero Hebbian traces) to the
probe; the loss is read at the last step only, so every weight, plasticity coefficient and the
modulator learn from what the network remembers at the end of the episode.

Determinism and resumption as in `fit`: step s trains on episodes n + [s * batch, (s + 1) * batch) of
the data's stream (beyond its evaluation set 0..n-1, so the same data never trains on what it tests),
nothing else is random, and checkpoints (runtime/train/checkpoint.py) are written every
`checkpoint_every` steps, so a run killed and resumed ends with the weights of an uninterrupted one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from expc.runtime.api import Cancelled, OpError, node_seed
from expc.runtime.plastic import store
from expc.runtime.plastic.nets import RecurrentNet, build
from expc.runtime.train import checkpoint
from expc.runtime.train.loop import lr_at

LOG_EVERY = 10


@dataclass(frozen=True)
class Schedule:  # what runtime/train/loop.lr_at reads
    lr: float
    steps: int
    schedule: str = "constant"
    warmup: int = 0


def final_logits(net: RecurrentNet, x: torch.Tensor) -> torch.Tensor:
    """The output logits at an episode's last step; x is [steps, batch, inputs]."""
    state = net.initial_state(x.shape[1], x.device)
    h = state[0]
    for t in range(x.shape[0]):
        h, state = net.step(x[t], state)
    return net.head(h)


def episode_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """"ce": binary cross-entropy of each bit's logit; "mse": squared error of tanh(logit) against the
    pattern's +1/-1 (the published pattern-completion loss). Mean over bits and episodes."""
    if kind == "ce":
        return F.binary_cross_entropy_with_logits(logits, target)
    return (torch.tanh(logits) - (2 * target - 1)).square().mean()


def wrong_bits(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(wrong erased bits, erased bits, wrong bits, bits)."""
    wrong = (logits > 0).float() != target
    return int((wrong & mask).sum()), int(mask.sum()), int(wrong.sum()), wrong.numel()


def tensors_of(data, start: int, count: int, device: str):
    x, y, mask = data.batch(start, count)
    return (torch.from_numpy(x).to(device), torch.from_numpy(y).to(device),
            torch.from_numpy(mask).to(device))


@torch.no_grad()
def evaluate(net: RecurrentNet, data, device: str, loss: str = "ce", batch: int = 256) -> dict:
    """Error and loss over the data's evaluation set (episodes 0..n-1). `value`-less: the operators
    pick which number is the value."""
    wrong = erased = wrong_all = bits = 0
    total = 0.0
    for start in range(0, data.n, batch):
        count = min(batch, data.n - start)
        x, y, mask = tensors_of(data, start, count, device)
        logits = final_logits(net, x)
        total += float(episode_loss(logits, y, loss)) * count
        w, e, wa, b = wrong_bits(logits, y, mask)
        wrong, erased, wrong_all, bits = wrong + w, erased + e, wrong_all + wa, bits + b
    return {
        # with nothing erased, every bit counts (the probe is then a plain recall)
        "error": wrong / erased if erased else wrong_all / bits,
        "error_all_bits": wrong_all / bits,
        "loss": total / data.n,
        "episodes": data.n,
    }


def run_fit_episodes(p, ctx):
    """The `fit` operator on `episodes`: build (or load) the recurrent net, train it, save it."""
    from expc.runtime.ops.optim import describe
    from expc.runtime.ops.plastic import RecurrentArch
    from expc.runtime.train.fit import threads_for
    from expc.runtime.train.optim import build_optimizer, descend, peak_lr, with_lr

    from expc.runtime.ops.nets import CLASSIFIER_DEFAULTS, Architecture
    from expc.runtime.ops.plastic import pairing_problem

    data = p.data
    data_type = "episodes" if getattr(data, "tag", None) == "episodes" else "tensors"
    if isinstance(p.model, (RecurrentArch, Architecture)):
        recurrent = isinstance(p.model, RecurrentArch)
        kind = (p.model.arch() if recurrent else p.model.arch(CLASSIFIER_DEFAULTS))["kind"]
        problem = pairing_problem(kind, "recurrent" if recurrent else "net", data_type)
        if problem:
            raise OpError(problem, field="data")
    check_fit_args(p)
    device = ctx.device
    if isinstance(p.model, RecurrentArch):
        net = build(p.model.arch(), data.inputs, data.outputs, False, node_seed(p.seed, ctx.seed))
    else:
        net, config = store.load(p.model, "cpu")
        if (config["inputs"], config["outputs"]) != (data.inputs, data.outputs):
            raise OpError(f"the net takes {config['inputs']} inputs and gives {config['outputs']} outputs, the "
                          f"episodes have {data.inputs} and {data.outputs}", field="data")
    threads_for(net, ctx.workers)
    net.to(device).train()
    lr = peak_lr(p.optimizer)
    optimizer = with_lr(p.optimizer, lr)
    sched = Schedule(lr=lr, steps=p.steps, schedule=p.schedule, warmup=p.warmup)
    opt = build_optimizer(optimizer, net.parameters())
    start = 0
    work_dir = ctx.work_dir
    if work_dir is not None:
        restored = checkpoint.load(work_dir, net, opt)
        if restored is not None:
            start = restored[0]
    advance = ctx.progress(p.steps, f"fit {ctx.node}")
    advance(start)
    pending: list[tuple[float, int, int]] = []
    step = start
    try:
        for step in range(start, p.steps):
            x, y, mask = tensors_of(data, data.n + step * p.batch, p.batch, device)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, sched)
            logits = final_logits(net, x)
            loss = episode_loss(logits, y, p.loss)
            descend(opt, loss, net, p.clip)
            w, e, _, _ = wrong_bits(logits.detach(), y, mask)
            pending.append((float(loss.detach()), w, e))
            done = step + 1
            if not math.isfinite(pending[-1][0]):
                raise OpError(f"{ctx.node}: training loss is {pending[-1][0]} at step {done}", field="optimizer",
                              hint="lower the learning rate or set clip")
            if len(pending) == LOG_EVERY or done == p.steps:
                ctx.log("loss", sum(v for v, _, _ in pending) / len(pending), done)
                erased = sum(e for _, _, e in pending)
                if erased:
                    ctx.log("error", sum(w for _, w, _ in pending) / erased, done)
                advance(len(pending))
                pending.clear()
                if done < p.steps:
                    ctx.check_cancelled()
                    if work_dir is not None and done % p.checkpoint_every == 0:
                        checkpoint.save(work_dir, done, net, opt, {})
    except Cancelled:
        if work_dir is not None and not pending and step + 1 > start:
            checkpoint.save(work_dir, step + 1, net, opt, {})
        raise
    net.eval()
    training = {"optimizer": describe(optimizer), "loss": p.loss, "steps": p.steps, "batch": p.batch,
                "seed": p.seed, "data": data.source}
    task = {"task": data.task, **data.settings}
    return store.save(net, store.config_of(net, task, training), ctx.out_dir)


def check_fit_args(p) -> None:
    """What `fit` cannot do with episodes: located errors rather than silently ignored arguments."""
    if p.epochs is not None:
        raise OpError("episodes are an endless stream: give steps, not epochs", field="epochs",
                      hint="each step trains on `batch` fresh episodes")
    for name in ("adversarial", "validation"):
        if getattr(p, name) is not None:
            raise OpError(f"{name} is for classifiers on tensors; evaluate a recurrent net with "
                          "error(model, EPISODES) or loss(model, EPISODES)", field=name)
    if p.temperature != 1.0:
        raise OpError("temperature is for classifiers on tensors", field="temperature")


def error_of(model, data, ctx, loss: str = "ce", field: str = "model") -> dict:
    net, config = store.load(model, ctx.device, field)
    if (config["inputs"], config["outputs"]) != (data.inputs, data.outputs):
        raise OpError(f"the net takes {config['inputs']} inputs and gives {config['outputs']} outputs, the "
                      f"episodes have {data.inputs} and {data.outputs}", field="data")
    from expc.runtime.train.fit import threads_for

    threads_for(net, ctx.workers)
    return evaluate(net, data, ctx.device, loss)
