"""torch optimizers from the optimizer values of runtime/ops/optim.py (sgd, adam, fop), and from the
plain names `finetune` accepted first ("adamw", "adam", "sgd")."""

from __future__ import annotations

import torch

from expc.runtime.ops.optim import DEFAULT_LR, AdamParams, FopParams, SgdParams


def base_of(spec: FopParams) -> SgdParams | AdamParams:
    """The optimizer a fop(...) wraps (built, or still in its JSON form when left at its default)."""
    inner = spec.optimizer
    if isinstance(inner, dict):
        cls = {"sgd": SgdParams, "adam": AdamParams}[inner["$op"]]
        inner = cls.model_validate({k: v for k, v in inner.items() if k != "$op"})
    return inner


def peak_lr(spec) -> float:
    """The learning rate of an optimizer value, or fit's default for its kind when it leaves it out."""
    base = base_of(spec) if isinstance(spec, FopParams) else spec
    return base.lr if base.lr is not None else DEFAULT_LR["sgd" if isinstance(base, SgdParams) else "adam"]


def with_lr(spec, lr: float):
    """The optimizer value with `lr` as its learning rate (finetune's lr; a fop's: its optimizer's)."""
    if isinstance(spec, FopParams):
        return spec.model_copy(update={"optimizer": base_of(spec).model_copy(update={"lr": lr})})
    return spec.model_copy(update={"lr": lr})


def build_optimizer(spec, params) -> torch.optim.Optimizer:
    """The torch optimizer of an optimizer value, over the parameters that require gradients."""
    params = [p for p in params if p.requires_grad]
    if isinstance(spec, SgdParams):
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, nesterov=spec.nesterov,
                               weight_decay=spec.weight_decay)
    if isinstance(spec, AdamParams):
        cls = torch.optim.AdamW if spec.decoupled else torch.optim.Adam
        return cls(params, lr=spec.lr, betas=tuple(spec.betas), eps=spec.eps, weight_decay=spec.weight_decay)
    if isinstance(spec, FopParams):
        from expc.runtime.train.fop import FOP

        return FOP(build_optimizer(base_of(spec), params), spec.hyper_lr, spec.structure, spec.every)
    raise TypeError(f"not an optimizer value: {spec!r}")


def named_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """finetune's optimizer names: adamw (decoupled decay), adam and sgd (momentum 0.9) with L2."""
    params = [p for p in params if p.requires_grad]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, module: torch.nn.Module, clip: float) -> None:
    """One update on `loss`: fresh gradients, their global norm over `module`'s parameters clipped to
    `clip` (0: no clipping), an optimizer step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
    opt.step()
