"""`fit` on text: training a recurrent language model (`rnn_lm(...)`, or a trained one to continue),
and `loss` / `perplexity` of one. The byte tokenizer's packed stream (expc.runtime.train.tokens);
each step reads `batch` windows of `context + 1` tokens at random offsets from a zero state
(truncated backpropagation through time) and minimizes next-byte cross-entropy.

Determinism: the windows of step i are drawn from a generator seeded by (seed, i) alone, and the
cells have no dropout, so a run resumed from a checkpoint ends with the same weights as an
uninterrupted one. `loss` (the mean over each 10 steps) is logged with its step: it is what a
search's pruner (median(), predictor()) watches.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from expc.runtime.api import Cancelled, OpError, node_seed
from expc.runtime.data.values import TextData
from expc.runtime.nets import rnn_lm
from expc.runtime.train import checkpoint
from expc.runtime.train.fit import FitConfig, threads_for
from expc.runtime.train.loop import lr_at
from expc.runtime.train.optim import build_optimizer, descend
from expc.runtime.train.tokens import Tokenizer, check_stream, sample_windows

LOG_EVERY = 10


def run_rnn_fit(p, ctx):
    """fit(model, data) where the model is rnn_lm(...) (or a trained one) or the data is text."""
    from expc.runtime.ops.cells import RnnLmParams
    from expc.runtime.ops.optim import describe
    from expc.runtime.train.optim import peak_lr, with_lr

    if not isinstance(p.data, TextData):
        raise OpError("rnn_lm(...) trains on text (text(...), or a split or mix of it), not on arrays", field="data")
    if p.validation is not None and not isinstance(p.validation, TextData):
        raise OpError("a language model is validated on text, not on arrays", field="validation")
    for name, bad in (("adversarial", p.adversarial is not None), ("loss", p.loss != "ce"),
                      ("temperature", p.temperature != 1.0)):
        if bad:
            raise OpError(f"{name} applies to classifiers; a language model trains on next-byte cross-entropy",
                          field=name)
    seed = node_seed(p.seed, ctx.seed)
    if isinstance(p.model, RnnLmParams):
        spec = p.model.net()
        net = rnn_lm.build(spec, seed)
    elif rnn_lm.is_rnn_lm(p.model):  # continue training
        net, config = rnn_lm.load(p.model)
        spec = config["net"]
        net.train()
    else:
        raise OpError("fit on text trains a recurrent language model: model = rnn_lm(...) (or one trained by fit)",
                      field="model")
    tok = Tokenizer("bytes")
    stream = tok.stream(p.data.examples())
    context = int(spec["context"])
    check_stream(stream, context, f"the training data ({p.data.source})")
    valid = tok.stream(p.validation.examples()) if p.validation is not None else None
    if valid is not None:
        check_stream(valid, 1, f"the validation data ({p.validation.source})", field="validation")
    steps = p.steps if p.steps is not None else p.epochs * math.ceil((stream.numel() - 1) / (p.batch * context))
    lr = peak_lr(p.optimizer)
    cfg = FitConfig(steps=steps, batch=p.batch, lr=lr, optimizer=with_lr(p.optimizer, lr), schedule=p.schedule,
                    warmup=p.warmup, clip=p.clip, seed=seed, checkpoint_every=p.checkpoint_every,
                    log_every=LOG_EVERY, validate_every=p.validate_every or 0)
    threads_for(net, ctx.workers)
    device = ctx.device
    net.to(device)
    summary = train(net, stream, context, cfg, ctx, device, ctx.work_dir, valid)
    training = {"optimizer": describe(cfg.optimizer), "steps": steps, "batch": p.batch, "context": context,
                "seed": p.seed, "data": p.data.source, "final_loss": summary["final_loss"]}
    return rnn_lm.save(net, training, ctx.out_dir)


def _window_gen(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 0x9E3779B97F4A7C15 + step) % 2**63)


def train(net, stream: torch.Tensor, context: int, cfg: FitConfig, ctx, device: str, work_dir: Path | None,
          valid: torch.Tensor | None = None) -> dict:
    opt = build_optimizer(cfg.optimizer, net.parameters())
    start = 0
    if work_dir is not None:
        restored = checkpoint.load(work_dir, net, opt)
        if restored is not None:
            start = restored[0]
    advance = ctx.progress(cfg.steps, f"fit {ctx.node}")
    if start:
        advance(start)
    net.train()
    losses: list[torch.Tensor] = []
    summary = {"final_loss": float("nan")}
    step = start
    try:
        for step in range(start, cfg.steps):
            w = sample_windows(stream, cfg.batch, context, _window_gen(cfg.seed, step)).to(device)
            lr = lr_at(step, cfg)
            for group in opt.param_groups:
                group["lr"] = lr
            logits, _ = net(w[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
            descend(opt, loss, net, cfg.clip)
            losses.append(loss.detach())
            done = step + 1
            checkpoint_now = work_dir is not None and done % cfg.checkpoint_every == 0 and done < cfg.steps
            if len(losses) == cfg.log_every or done == cfg.steps or checkpoint_now:
                values = torch.stack(losses).tolist()
                for j, v in enumerate(values):
                    if not math.isfinite(v):
                        raise OpError(f"training loss is {v} at step {done - len(values) + j + 1} "
                                      f"(lr {lr:.3g})", field="optimizer",
                                      hint="lower the learning rate, or clip (clip = 1)")
                summary["final_loss"] = sum(values) / len(values)
                advance(len(values))
                losses.clear()
                ctx.log("loss", summary["final_loss"], done)
                if valid is not None and (done == cfg.steps or cfg.validate_every and done % cfg.validate_every == 0):
                    nats, _ = rnn_lm.stream_loss(net, valid, None, 64, device)
                    ctx.log("val_loss", nats, done)
                if done < cfg.steps:
                    ctx.check_cancelled()
                    if checkpoint_now:
                        checkpoint.save(work_dir, done, net, opt, {"torch": torch.get_rng_state()})
    except Cancelled:
        if work_dir is not None and not losses and step + 1 > start:
            checkpoint.save(work_dir, step + 1, net, opt, {"torch": torch.get_rng_state()})
        raise
    net.eval()
    return summary


def evaluate(p, ctx) -> dict:
    """`loss` / `perplexity` of an rnn_lm model directory on text (see expc.runtime.nets.rnn_lm)."""
    from expc.runtime.train.evaluate import metrics
    from expc.runtime.train.loop import set_threads

    if not isinstance(p.data, TextData):
        raise OpError("a language model is evaluated on text, not on arrays", field="data")
    set_threads(ctx.workers)
    net, _ = rnn_lm.load(p.model, ctx.device)
    stream = Tokenizer("bytes").stream(p.data.examples())
    check_stream(stream, 1, f"the evaluation data ({p.data.source})")
    nats, n = rnn_lm.stream_loss(net, stream, p.context, p.batch, ctx.device)
    return metrics(nats, n, n)


@torch.inference_mode()
def byte_losses(p, ctx) -> dict:
    """Per-byte losses of an rnn_lm on the first `n` predictions of a probe text."""
    if not rnn_lm.is_rnn_lm(p.model):
        raise OpError("byte_losses reads a language model trained by fit(rnn_lm(...), TEXT)", field="model")
    net, _ = rnn_lm.load(p.model, ctx.device)
    stream = Tokenizer("bytes").stream(p.data.examples())
    check_stream(stream, p.n, f"the probe text ({p.data.source})")
    w = stream[: p.n + 1][None].to(ctx.device)
    logits, _ = net(w[:, :-1])
    losses = F.cross_entropy(logits[0], w[0, 1:], reduction="none").tolist()
    return {"value": losses, "mean": sum(losses) / len(losses)}
