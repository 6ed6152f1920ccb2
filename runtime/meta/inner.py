"""The inner learning process shared by `gtn` and `petri_dish`: a network's parameters taken through a
few steps of SGD with momentum, as a differentiable function of everything that shapes those steps
(the data, the learning rate, the momentum), so an outer loss on the final parameters can be
backpropagated through the whole process.

The network stays an ordinary nn.Module; its parameters are passed in as tensors with
torch.func.functional_call, and each step's gradient comes from torch.autograd.grad with
create_graph=True, which keeps the step itself differentiable (second-order terms included). This is
what the unmaintained `higher` library did with monkey-patched modules; torch.func makes it ~20 lines.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.func import functional_call

Batch = Callable[[int], tuple[torch.Tensor, torch.Tensor]]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def initial(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The net's current parameters as fresh leaves the inner loop can differentiate with respect to."""
    return {name: p.detach().clone().requires_grad_(True) for name, p in net.named_parameters()}


def forward(net: torch.nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return functional_call(net, params, (x,))


def unroll(net: torch.nn.Module, params: dict[str, torch.Tensor], batch: Batch, loss: Loss, steps: int,
           lr: torch.Tensor | float, momentum: torch.Tensor | float = 0.0,
           differentiable: bool = True) -> dict[str, torch.Tensor]:
    """The parameters after `steps` steps of SGD with momentum (v <- m v + g; p <- p - lr v) on
    loss(net(x_t), y_t), (x_t, y_t) = batch(t). With `differentiable`, the result is a function of
    `params`, `lr`, `momentum` and whatever `batch` computes from (a generator, learned points) that
    autograd can differentiate; without it, each step is detached (plain training, no graph kept).

    `net` should be in eval mode when its forward pass draws (dropout): the steps must be a function
    of their inputs."""
    names = list(params)
    p = [params[n] for n in names]
    v = [torch.zeros_like(t) for t in p]
    for t in range(steps):
        x, y = batch(t)
        step_loss = loss(forward(net, dict(zip(names, p)), x), y)
        grads = torch.autograd.grad(step_loss, p, create_graph=differentiable)
        if differentiable:
            v = [momentum * vi + g for vi, g in zip(v, grads)]
            p = [pi - lr * vi for pi, vi in zip(p, v)]
        else:
            with torch.no_grad():
                v = [momentum * vi + g for vi, g in zip(v, grads)]
                p = [(pi - lr * vi).requires_grad_(True) for pi, vi in zip(p, v)]
    return dict(zip(names, p))
