"""Generative Teaching Networks (kind `meta`): `gtn` meta-trains a generator of synthetic training data,
`teach` trains a learner on it.

    data d = split(digits(), test = 0.2, seed = 0)
    meta t = gtn(generator = generator(noise = 32, hidden = [64, 128]), learners = [mlp(hidden = [64])],
                 real = d.train, curriculum = "learned", inner_steps = 16, outer_steps = 500)
    train m = teach(t, learner = mlp(hidden = [32]))
    eval acc = accuracy(m, d.test)

A teacher is a directory (config.json, teacher.safetensors); a taught learner is a classifier. The
inner and outer loops are in expc.runtime.meta (torch, imported only when they run)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from expc.runtime.api import Artifact
from expc.runtime.ops.optim import check_optimizer
from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type
from expc.runtime.values import ModelDir

GENERATOR = value_type("generator", "a generator architecture for gtn, inline: generator(noise, hidden, weight_norm)",
                       node=False)


class TeacherDir(Artifact):
    """A meta-trained GTN: config.json (shapes, inner-loop settings, the learned lr and momentum) and
    teacher.safetensors (the generator, the learned curriculum, the raw lr and momentum)."""

    tag = "teacher"
    lr: float = 0.0
    momentum: float = 0.0
    meta_loss: float = 0.0
    curriculum: str = "none"
    steps: int = 0


TEACHER = value_type(
    "teacher", "a meta-trained generative teaching network (gtn): members .lr, .momentum (the learned inner "
    "learning rate and momentum)", members={"lr": "number", "momentum": "number", "meta_loss": "number"},
    kinds={"meta"}, artifact=TeacherDir,
    summary=lambda v: f"teacher: {getattr(v, 'steps', '?')} inner steps at lr {getattr(v, 'lr', 0):.3g}, momentum "
    f"{getattr(v, 'momentum', 0):.2f}, curriculum {getattr(v, 'curriculum', '?')}, meta-loss "
    f"{getattr(v, 'meta_loss', 0):.3g}")


class GeneratorParams(Params):
    noise: int = Field(32, ge=1, le=4096, description="size of the noise vector (the label is given one-hot as well)")
    hidden: list[int] = Field([64, 128], min_length=1, description="widths of the hidden layers")
    weight_norm: bool = Field(True, description="weight normalization of every layer (Salimans & Kingma 2016), "
                              "which GTN's meta-training needs to be stable")

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, v):
        if any(not 1 <= h <= 4096 for h in v):
            raise ValueError(f"hidden widths must be in [1, 4096], got {v}")
        return v


@op("generator", params=GeneratorParams, returns="generator", inline=True)
def generator(p: GeneratorParams, ctx=None) -> GeneratorParams:
    """A GTN generator: [noise, one-hot label] through dense layers (leaky ReLU) to one synthetic example."""
    return p


class GtnParams(Params):
    generator: Input["generator"] = Field({"$op": "generator"}, description="the generator: generator(...)")
    learners: list[Input["net"]] = Field(min_length=1, description="the learner architectures, used in turn "
                                         "(one freshly initialized learner per outer step)")
    real: Input["tensors"] = Field(description="the real training data the learners' outer loss is measured on")
    curriculum: Literal["none", "learned"] = Field(
        "none", description='"learned": the noise of each inner step is a meta-learned fixed sequence; "none": '
        "fresh noise at every outer step")
    inner_steps: int = Field(16, ge=1, le=10_000, description="SGD steps of the learner on synthetic batches")
    inner_batch: int = Field(32, ge=1, le=100_000, description="synthetic examples per inner step")
    inner_lr: float = Field(0.02, gt=0, le=100, description="the inner learning rate's initial value (learned)")
    inner_momentum: float = Field(0.5, ge=0, lt=1, description="the inner momentum's initial value (learned)")
    outer: Input["optimizer"] = Field({"$op": "adam", "lr": 1e-3},
                                      description="the optimizer of the generator and the learned lr and momentum")
    outer_steps: int = Field(500, ge=1, le=10_000_000, description="meta-training steps")
    outer_batch: int = Field(256, ge=1, le=1_000_000, description="real examples per outer loss")
    seed: int = Field(0, description="the generator's initialization and every draw of meta-training")
    checkpoint_every: int = Field(100, ge=1, description="outer steps between resumable checkpoints")

    @field_validator("outer")
    @classmethod
    def _outer(cls, v):
        return check_optimizer(v)


@op("gtn", params=GtnParams, kinds={"meta"}, returns="teacher", version=1)
def gtn(p: GtnParams, ctx) -> TeacherDir:
    """Meta-train a Generative Teaching Network (Such et al. 2020): at each outer step a freshly
    initialized learner (the `learners` in turn) takes `inner_steps` steps of SGD with momentum on
    generated batches (labels balanced over the classes), and its cross-entropy on `outer_batch` real
    examples is backpropagated through those steps into the generator, the learned inner lr and
    momentum, and with curriculum = "learned" the noise of every inner step. Logs meta_loss,
    inner_lr and inner_momentum every 10 steps; checkpoints every `checkpoint_every` steps and resumes
    with the same result."""
    from expc.runtime.meta.gtn import run_gtn

    return TeacherDir(path=Path(ctx.out_dir), **run_gtn(p, ctx))


class TeachParams(Params):
    teacher: Input["teacher"] = Field(description="a teacher (gtn)")
    learner: Input["net"] = Field(description="the architecture to train: mlp(...), cnn(...)")
    steps: int | None = Field(None, ge=1, le=1_000_000, description="inner steps (default: the teacher's; at most "
                              "its curriculum's length when learned)")
    lr: float | None = Field(None, gt=0, description="the learning rate (default: the teacher's learned one)")
    momentum: float | None = Field(None, ge=0, lt=1, description="the momentum (default: the teacher's learned one)")
    seed: int = Field(0, description="the learner's initialization (and the noise without a learned curriculum)")


@op("teach", params=TeachParams, kinds={"train", "model"}, returns="classifier", version=1)
def teach(p: TeachParams, ctx) -> ModelDir:
    """Train a freshly initialized learner on a teacher's synthetic data: the teacher's inner loop
    (its steps, batch, learned lr and momentum, learned curriculum) without meta-training. The result
    is a classifier (`accuracy(m, data)` evaluates it on real data)."""
    from expc.runtime.meta.gtn import run_teach

    return run_teach(p, ctx)
