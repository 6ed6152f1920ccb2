"""Generative Teaching Networks (Such et al. 2020) behind `gtn` and `teach` (runtime/ops/meta.py).

A generator maps noise and a label to a synthetic example; a freshly initialized learner takes
`inner_steps` steps of SGD with momentum on generated batches (learned learning rate and momentum);
the learner's loss on a batch of real data is backpropagated through those steps into the generator
(expc.runtime.meta.inner). With curriculum = "learned" the noise of each inner step is itself a
meta-parameter, a fixed sequence the generator turns into the same batches every time; with "none"
it is drawn afresh at every outer step.

A teacher is a directory: config.json (the generator's shape, the data's shape, classes and range,
the inner loop's settings, the learned lr and momentum) and teacher.safetensors (generator weights,
the learned curriculum, the raw lr and momentum). `teach` trains a learner on what it generates and
saves it as a classifier (expc.runtime.nets.load), so `accuracy` evaluates it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from expc.runtime.api import OpError, node_seed
from expc.runtime.meta.inner import forward, initial, unroll
from expc.runtime.meta.loop import draw, meta_train, step_seed
from expc.runtime.nets.modeldir_io import load_weights, read_tagged, save_module

FORMAT = 1


class Generator(nn.Module):
    """[noise, one-hot label] -> dense layers (leaky ReLU, optionally weight-normalized) -> an example,
    in units of the data's range: lo + (hi - lo) * output."""

    def __init__(self, noise: int, hidden: list[int], classes: int, shape: list[int], input_range, weight_norm: bool):
        super().__init__()
        self.noise, self.classes, self.shape = int(noise), int(classes), list(shape)
        self.lo, self.span = float(input_range[0]), float(input_range[1]) - float(input_range[0]) or 1.0
        width = self.noise + self.classes
        self.hidden = nn.ModuleList()
        for h in hidden:
            self.hidden.append(_linear(width, h, weight_norm))
            width = h
        self.out = _linear(width, math.prod(self.shape), weight_norm)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, F.one_hot(y, self.classes).to(z.dtype)], 1)
        for layer in self.hidden:
            x = F.leaky_relu(layer(x), 0.1)
        x = self.out(x)
        return (self.lo + self.span * x).reshape(len(z), *self.shape)


def _linear(i: int, o: int, weight_norm: bool) -> nn.Module:
    layer = nn.Linear(i, o)
    return nn.utils.parametrizations.weight_norm(layer) if weight_norm else layer


class Teacher(nn.Module):
    """Everything meta-learned: the generator, the curriculum (or None), the inner lr and momentum
    (stored raw: lr = exp(raw_lr), momentum = sigmoid(raw_momentum), so both stay in range)."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        g = config["generator"]
        self.generator = Generator(g["noise"], g["hidden"], config["classes"], config["input_shape"],
                                   config["input_range"], g["weight_norm"])
        self.raw_lr = nn.Parameter(torch.tensor(math.log(config["inner_lr"])))
        m = min(max(config["inner_momentum"], 1e-3), 1 - 1e-3)
        self.raw_momentum = nn.Parameter(torch.tensor(math.log(m / (1 - m))))
        self.curriculum = None
        if config["curriculum"] == "learned":
            gen = draw(step_seed(config["seed"], 0, stream=9))
            self.curriculum = nn.Parameter(torch.randn(config["inner_steps"], config["inner_batch"], g["noise"],
                                                       generator=gen))

    @property
    def lr(self) -> torch.Tensor:
        return self.raw_lr.exp()

    @property
    def momentum(self) -> torch.Tensor:
        return torch.sigmoid(self.raw_momentum)

    def labels(self, t: int, device) -> torch.Tensor:
        """The labels of inner step t: every class in turn, so each step's batch is balanced."""
        n, c = self.config["inner_batch"], self.config["classes"]
        return (torch.arange(n, device=device) + t * n) % c

    def batches(self, steps: int, seed: int, device):
        """batch(t) -> (synthetic examples, labels) of inner step t: the learned curriculum's noise, or
        noise drawn from `seed`."""
        n, noise = self.config["inner_batch"], self.config["generator"]["noise"]
        if self.curriculum is not None:
            if steps > self.curriculum.shape[0]:
                raise OpError(f"the teacher's learned curriculum has {self.curriculum.shape[0]} steps, not {steps}",
                              field="steps")
            z = self.curriculum
        else:
            z = torch.randn(steps, n, noise, generator=draw(seed)).to(device)

        def batch(t: int):
            y = self.labels(t, device)
            return self.generator(z[t], y), y

        return batch


def _learner(arch_value, data_shape, classes, input_range, seed: int, device, field: str):
    from expc.runtime.nets.build import build
    from expc.runtime.ops.nets import CLASSIFIER_DEFAULTS

    arch = arch_value.arch(CLASSIFIER_DEFAULTS)
    bad = arch_value.check_data(list(data_shape), classes)
    if bad is not None:
        raise OpError(bad[1], field=field)
    try:
        net = build(arch, list(data_shape), classes, input_range, seed=seed)
    except ValueError as e:
        raise OpError(str(e), field=field) from None
    return arch, net.to(device).eval()  # eval: no dropout draws inside the inner loop


def run_gtn(p, ctx) -> dict:
    from expc.runtime.train.fit import threads_for
    from expc.runtime.train.optim import build_optimizer, peak_lr, with_lr

    device = ctx.device
    data = p.real
    shape, classes, input_range = list(data.shape), int(data.classes), (float(data.lo), float(data.hi))
    seed = node_seed(p.seed, ctx.seed)
    X, y = (torch.from_numpy(a).to(device) for a in data.load())
    config = {
        "expc_teacher": FORMAT, "input_shape": shape, "classes": classes, "input_range": list(input_range),
        "generator": {"noise": p.generator.noise, "hidden": list(p.generator.hidden),
                      "weight_norm": p.generator.weight_norm},
        "curriculum": p.curriculum, "inner_steps": p.inner_steps, "inner_batch": p.inner_batch,
        "inner_lr": p.inner_lr, "inner_momentum": p.inner_momentum, "seed": seed,
    }
    for i, learner in enumerate(p.learners):  # every learner must fit the data before any work
        _learner(learner, shape, classes, input_range, 0, "cpu", f"learners.{i}")
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # the CPU generator only (manual_seed queues CUDA seeds)
        teacher = Teacher(config).to(device)
    threads_for(teacher, ctx.workers)
    opt = build_optimizer(with_lr(p.outer, peak_lr(p.outer)), teacher.parameters())
    n = len(X)

    def outer_loss(step: int) -> torch.Tensor:
        which = step % len(p.learners)
        _, net = _learner(p.learners[which], shape, classes, input_range, step_seed(seed, step, 1), device,
                          f"learners.{which}")
        batch = teacher.batches(p.inner_steps, step_seed(seed, step, 2), device)
        final = unroll(net, initial(net), batch, F.cross_entropy, p.inner_steps, teacher.lr, teacher.momentum)
        idx = torch.randperm(n, generator=draw(step_seed(seed, step, 3)))[: p.outer_batch].to(device)
        return F.cross_entropy(forward(net, final, X[idx]), y[idx])

    def learned() -> dict[str, float]:
        return {"inner_lr": float(teacher.lr.detach()), "inner_momentum": float(teacher.momentum.detach())}

    summary = meta_train(teacher, opt, p.outer_steps, outer_loss, ctx, p.checkpoint_every, "gtn", extra_logs=learned)
    config["learned"] = {"lr": float(teacher.lr.detach()), "momentum": float(teacher.momentum.detach())}
    config["meta_training"] = {"outer_steps": p.outer_steps, "outer_batch": p.outer_batch,
                               "final_meta_loss": summary["final_loss"], "data": data.source,
                               "learners": [learner.arch(_defaults()) for learner in p.learners]}
    save_teacher(teacher, config, ctx.out_dir)
    return {"lr": config["learned"]["lr"], "momentum": config["learned"]["momentum"],
            "meta_loss": summary["final_loss"], "curriculum": p.curriculum, "steps": p.inner_steps}


def _defaults() -> dict:
    from expc.runtime.ops.nets import CLASSIFIER_DEFAULTS

    return CLASSIFIER_DEFAULTS


def save_teacher(teacher: Teacher, config: dict, out_dir: Path) -> None:
    save_module(teacher, config, out_dir, weights="teacher.safetensors")


def load_teacher(path: Path, device: str, field: str = "teacher") -> Teacher:
    config, tensors = read_tagged(path, "teacher.safetensors", "teacher", "expc_teacher", FORMAT, field)
    teacher = Teacher(config)
    load_weights(teacher, tensors, path, field)
    return teacher.to(device).eval()


def run_teach(p, ctx):
    """A learner trained on the teacher's synthetic data, saved as a classifier."""
    from expc.runtime.nets.load import config_of, save_classifier
    from expc.runtime.train.fit import threads_for

    device = ctx.device
    teacher = load_teacher(p.teacher.path, device)
    c = teacher.config
    shape, classes, input_range = c["input_shape"], int(c["classes"]), tuple(c["input_range"])
    seed = node_seed(p.seed, ctx.seed)
    arch, net = _learner(p.learner, shape, classes, input_range, seed, device, "learner")
    threads_for(net, ctx.workers)
    steps = p.steps if p.steps is not None else int(c["inner_steps"])
    lr = torch.tensor(p.lr, device=device) if p.lr is not None else teacher.lr.detach()
    momentum = torch.tensor(p.momentum, device=device) if p.momentum is not None else teacher.momentum.detach()
    batch = teacher.batches(steps, step_seed(seed, 0, 2), device)

    def detached(t: int):
        with torch.no_grad():
            return batch(t)

    final = unroll(net, initial(net), detached, F.cross_entropy, steps, lr, momentum, differentiable=False)
    with torch.no_grad():
        for name, param in net.named_parameters():
            param.copy_(final[name])
    training = {"teacher": str(p.teacher.path.name), "steps": steps, "lr": float(lr), "momentum": float(momentum),
                "batch": int(c["inner_batch"]), "seed": p.seed, "data": "gtn"}
    return save_classifier(net, config_of(arch, shape, classes, input_range, training), ctx.out_dir)
