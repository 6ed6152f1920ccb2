"""Training (kind `train`): fine-tune a causal LM on a dataset with a plain PyTorch loop."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from expc.runtime.ops.optim import OPTIMIZERS, lr_of
from expc.runtime.api import node_seed
from expc.runtime.registry import Input, Params, op
from expc.runtime.values import ModelDir


NAMED_OPTIMIZERS = ("adamw", "adam", "sgd")


class FinetuneParams(Params):
    model: Input["model"] = Field(description="the model to start from")
    data: Input["data"] = Field(description="training examples")
    steps: int = Field(ge=1, description="optimizer steps")
    lr: float = Field(gt=0, description="peak learning rate")
    batch: int = Field(ge=1, description="windows per step")
    context: int | None = Field(None, ge=2, description="tokens per window (default: the model's context)")
    optimizer: Literal["adamw", "adam", "sgd"] | Input["optimizer"] = Field(
        "adamw", description='"adamw", "adam", "sgd" (momentum 0.9), or an optimizer value: adam(betas = '
        "[0.9, 0.95]), sgd(momentum = 0.9), fop(...) (their lr is `lr`)")
    schedule: Literal["cosine", "linear", "constant"] = Field("cosine", description="decay after warmup")
    warmup: int = Field(0, ge=0, description="steps of linear warmup")
    weight_decay: float = Field(0.0, ge=0, description="decoupled (adamw) or L2 (adam, sgd)")
    seed: int = Field(0, description="data order and dropout seed")
    checkpoint_every: int = Field(100, ge=1, description="steps between resumable checkpoints")
    clip: float = Field(1.0, ge=0, description="gradient-norm clipping (0: off)")

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v):
        # the union's Input member accepts anything: the names and operators are checked here
        if isinstance(v, str) and v not in NAMED_OPTIMIZERS:
            raise ValueError(f"unknown optimizer {v!r}: one of {', '.join(NAMED_OPTIMIZERS)}, or an optimizer "
                             f"value ({', '.join(o + '(...)' for o in OPTIMIZERS)})")
        if isinstance(v, dict) and v.get("$op") not in OPTIMIZERS:
            raise ValueError(f"expected an optimizer name or value ({', '.join(o + '(...)' for o in OPTIMIZERS)}), "
                             f"got {v.get('$op')}(...)")
        return v

    @model_validator(mode="after")
    def _lr(self):
        if isinstance(self.optimizer, dict):
            given = lr_of(self.optimizer)
            if given is not None and given != self.lr:
                raise ValueError(f"the learning rate is given twice: lr = {self.lr:g} and {self.optimizer['$op']}"
                                 f"(...) with lr = {given:g} (leave it out of the optimizer: lr is the peak)")
            if self.weight_decay:
                raise ValueError("weight_decay goes into the optimizer value (adam(weight_decay = ...))")
        return self


@op("finetune", params=FinetuneParams, kinds={"train", "model"}, returns="model", version=1)
def finetune(p: FinetuneParams, ctx) -> ModelDir:
    """Fine-tune a causal LM: random windows of the packed token stream (see expc.runtime.train.tokens),
    next-token cross-entropy, the chosen optimizer (a name, or a value such as adam(betas =
    [0.9, 0.95]), at learning rate `lr`) and schedule. Checkpoints every `checkpoint_every`
    steps into the node's work dir, so a killed run resumes mid-training; a non-finite loss is an
    error naming the node and step. Logs `loss` (mean over each 10 steps)."""
    from expc.runtime.train.loop import TrainConfig, train
    from expc.runtime.train.modeling import load_for_context, save_model
    from expc.runtime.train.optim import with_lr
    from expc.runtime.train.tokens import check_stream

    lm, tok, context = load_for_context(p.model, p.context, ctx)
    if p.warmup >= p.steps and p.warmup > 0:
        ctx.warn(f"warmup ({p.warmup}) covers every step ({p.steps}): the schedule never decays", field="warmup")
    stream = tok.stream(p.data.examples())
    check_stream(stream, context, f"the training data ({p.data.source})")
    cfg = TrainConfig(
        steps=p.steps,
        lr=p.lr,
        batch=p.batch,
        context=context,
        optimizer=p.optimizer if isinstance(p.optimizer, str) else with_lr(p.optimizer, p.lr),
        schedule=p.schedule,
        warmup=p.warmup,
        weight_decay=p.weight_decay,
        clip=p.clip,
        seed=node_seed(p.seed, ctx.seed),
        checkpoint_every=p.checkpoint_every,
        dtype=ctx.dtype,
    )
    train(lm, stream, cfg, ctx, ctx.device, ctx.work_dir)
    return save_model(lm, ctx.out_dir, tok)
