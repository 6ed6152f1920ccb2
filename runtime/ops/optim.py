"""Optimizers (`optimizer`, inline): `sgd(...)`, `adam(...)` and `fop(...)`, accepted by `fit` and
`finetune`:

    train clf = fit(cnn(), digits.train, optimizer = fop(sgd(lr = 0.1, momentum = 0.9)), epochs = 5)
    train m = finetune(base, data, steps = 100, optimizer = adam(lr = 3e-4, decoupled = true))

`lr` is the peak learning rate; the training operator's schedule scales it. Left out, `fit` uses
0.1 for sgd (fop's default, as published) and 1e-3 for adam, and `finetune` its own `lr`. The torch
optimizers are built by expc.runtime.train.optim (imported only when training runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type

OPTIMIZER = value_type("optimizer", "an optimizer: sgd(...), adam(...), fop(...)", node=False)

# the optimizers a fop(...) may wrap, and the names of the optimizer operators
BASE_OPTIMIZERS = ("sgd", "adam")
OPTIMIZERS = (*BASE_OPTIMIZERS, "fop")


LR = "learning rate, the peak of the schedule (when left out: fit {}, finetune its own lr)"
# the learning rate `fit` uses when an optimizer value leaves it out
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}


class SgdParams(Params):
    lr: float | None = Field(None, gt=0, description=LR.format(DEFAULT_LR["sgd"]))
    momentum: float = Field(0.0, ge=0, lt=1, description="heavy-ball momentum")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0)")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty added to the gradient")

    @field_validator("nesterov")
    @classmethod
    def _nesterov(cls, v, info):
        if v and info.data.get("momentum", 0) == 0:
            raise ValueError("nesterov = true needs momentum > 0")
        return v


@op("sgd", params=SgdParams, returns="optimizer", inline=True)
def sgd(p: SgdParams, ctx=None) -> SgdParams:
    """Stochastic gradient descent (torch.optim.SGD), with optional (Nesterov) momentum."""
    return p


class AdamParams(Params):
    lr: float | None = Field(None, gt=0, description=LR.format(DEFAULT_LR["adam"]))
    betas: list[float] = Field([0.9, 0.999], description="[beta1, beta2]: decay of the moment estimates")
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty (decoupled = true: decoupled decay, AdamW)")
    decoupled: bool = Field(False, description="decoupled weight decay (AdamW)")
    eps: float = Field(1e-8, gt=0, description="added to the denominator")

    @field_validator("betas")
    @classmethod
    def _betas(cls, v):
        if len(v) != 2 or not all(0 <= b < 1 for b in v):
            raise ValueError(f"betas must be [beta1, beta2], each in [0, 1), got {v}")
        return v


@op("adam", params=AdamParams, returns="optimizer", inline=True)
def adam(p: AdamParams, ctx=None) -> AdamParams:
    """Adam (torch.optim.Adam), or AdamW with decoupled = true."""
    return p


class FopParams(Params):
    optimizer: Input["optimizer"] = Field(
        {"$op": "sgd"}, description="the optimizer that takes the preconditioned gradient: sgd(...) or adam(...)"
    )
    hyper_lr: float = Field(1e-4, ge=0, description="learning rate of the preconditioners (hypergradient descent)")
    structure: Literal["auto", "spatial", "input", "diagonal"] = Field(
        "auto",
        description='"spatial": conv kernels get a (k*k)^2 matrix shared over channels; "input": a matrix over '
        'each weight\'s input features; "diagonal": a vector over them; "auto": spatial for conv kernels, '
        "input for other weights (diagonal above 2,048 inputs)",
    )
    every: int = Field(1, ge=1, description="steps between preconditioner updates")

    @field_validator("optimizer")
    @classmethod
    def _base(cls, v):
        if isinstance(v, dict) and v.get("$op") not in BASE_OPTIMIZERS:
            raise ValueError(f"fop wraps sgd(...) or adam(...), got {v.get('$op')}(...)")
        return v


@op("fop", params=FopParams, returns="optimizer", inline=True)
def fop(p: FopParams, ctx=None) -> FopParams:
    """First-order preconditioning (Moskovitz et al. 2019): a preconditioning matrix per layer, learned
    by hypergradient descent, applied to the gradient before sgd(...) or adam(...) steps."""
    return p


def check_optimizer(v):
    """The field validator of a params model's optimizer value (an inline `sgd(...)`, `adam(...)` or
    `fop(...)`): ValueError for another operator's value."""
    if isinstance(v, dict) and v.get("$op") not in OPTIMIZERS:
        known = ", ".join(o + "(...)" for o in OPTIMIZERS)
        raise ValueError(f"expected an optimizer ({known}), got {v.get('$op')}(...)")
    return v


def lr_of(value) -> float | None:
    """The lr an optimizer value gives (a fop's: its optimizer's), None when it leaves it out; from
    its JSON form or built."""
    if isinstance(value, dict):
        inner = value.get("optimizer") if value.get("$op") == "fop" else value
        return inner.get("lr") if isinstance(inner, dict) else None
    if isinstance(value, FopParams):
        return lr_of(value.optimizer)
    return getattr(value, "lr", None)


def describe(spec) -> str:
    """`adam(lr=0.001)`: an optimizer value in one line (for messages and config.json)."""
    name = {SgdParams: "sgd", AdamParams: "adam", FopParams: "fop"}.get(type(spec), "?")
    args = []
    for k in type(spec).model_fields:
        v = getattr(spec, k)
        if isinstance(v, Params):
            args.append(describe(v))
        elif v != type(spec).model_fields[k].default:
            args.append(f"{k}={v}")
    return f"{name}({', '.join(args)})"
