"""Attack values (runtime/ops/attacks.py) as torchattacks attacks on a classifier.

torchattacks expects inputs in [0, 1] and a model that returns logits. `AttackView` is that model:
u in [0, 1] is the data's feature range [lo, hi] (x = lo + u * (hi - lo)), and its logits are the
classifier's divided by the attacker's temperature, so eps is a fraction of the range and the
attacker's temperature changes what the attack sees, never the classifier. `perturb` maps a batch
in data units to its adversarial version in data units, seeded and without touching torch's global
random state (a training step's dropout stream stays its own).

What torchattacks lacks is written here: PGD with the margin loss, and PGD's restarts.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn

from expc.runtime.api import OpError

try:
    import torchattacks
except ImportError:  # installed apart from the project (its declared requirements would replace torch)
    raise OpError("attacks need torchattacks, which is not installed",
                  hint="pip install --no-deps torchattacks==3.5.1 (see README, quick start)") from None
from expc.runtime.ops.attacks import AutoAttackParams, FgsmParams, PgdParams, SquareParams

Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class AttackView(nn.Module):
    """The classifier as an attack sees it: inputs in [0, 1] of shape `shape` (images as [C, H, W]),
    logits / temperature out. Its training mode follows the classifier's, so torchattacks (which puts
    the model in eval mode during an attack and restores the mode it found) leaves the classifier as
    it was."""

    def __init__(self, net: nn.Module, lo: float, hi: float, temperature: float, data_shape: list[int]):
        super().__init__()
        self.net = net
        self.lo, self.width = float(lo), float(hi) - float(lo)
        self.temperature = float(temperature)
        self.data_shape = list(data_shape)
        self.identity = self.lo == 0.0 and self.width == 1.0
        self.train(net.training)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = u if self.identity else u * self.width + self.lo  # data already in [0, 1]: nothing to map
        if list(x.shape[1:]) != self.data_shape:
            x = x.reshape(u.shape[0], *self.data_shape)
        z = self.net(x)
        return z if self.temperature == 1.0 else z / self.temperature


def margin(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per example, the largest other logit minus the true one (> 0: misclassified)."""
    true = z.gather(1, y[:, None])[:, 0]
    other = z.masked_fill(nn.functional.one_hot(y, z.shape[1]).bool(), -math.inf).amax(1)
    return other - true


class MarginPGD(torchattacks.PGD):
    """torchattacks.PGD with the margin loss in place of the cross-entropy (the same steps)."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images = images.clone().detach().to(self.device)
        labels = labels.clone().detach().to(self.device)
        adv = images.clone().detach()
        if self.random_start:
            adv = torch.clamp(adv + torch.empty_like(adv).uniform_(-self.eps, self.eps), 0, 1).detach()
        for _ in range(self.steps):
            adv.requires_grad = True
            cost = margin(self.get_logits(adv), labels).sum()
            grad = torch.autograd.grad(cost, adv)[0]
            adv = adv.detach() + self.alpha * grad.sign()
            delta = torch.clamp(adv - images, min=-self.eps, max=self.eps)
            adv = torch.clamp(images + delta, min=0, max=1).detach()
        return adv


def with_restarts(attack: Attack, view: nn.Module, restarts: int) -> Attack:
    """Run `attack` up to `restarts` times; each input keeps the first result that fools the model
    (later restarts only attack the inputs not yet fooled; the random stream goes on between them)."""

    def run(u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        best = attack(u, y)
        for _ in range(restarts - 1):
            with torch.no_grad():
                todo = view(best).argmax(1) == y
            if not bool(todo.any()):
                break
            best[todo] = attack(u[todo], y[todo])
        return best

    return run


def attack_shape(spec, data_shape: list[int], field: str = "attack") -> list[int]:
    """The per-example shape an attack works on: images as [C, H, W]; square and autoattack need images."""
    if len(data_shape) == 2:
        return [1, *data_shape]
    if len(data_shape) == 3 or isinstance(spec, (FgsmParams, PgdParams)):
        return list(data_shape)
    name = "square" if isinstance(spec, SquareParams) else "autoattack"
    raise OpError(f"{name}(...) needs images ([channels, height, width] or [height, width]), the data has examples "
                  f"of shape {data_shape}", field=field, hint="fgsm(...) and pgd(...) take any shape")


def build(spec, view: nn.Module, classes: int, seed: int, field: str = "attack") -> Attack:
    """The torchattacks attack of an attack value, on `view` (inputs in [0, 1], eps in those units)."""
    if isinstance(spec, FgsmParams):
        return torchattacks.FGSM(view, eps=spec.eps)
    if isinstance(spec, PgdParams):
        cls = MarginPGD if spec.loss == "margin" else torchattacks.PGD
        attack = cls(view, eps=spec.eps, alpha=spec.step_size, steps=spec.steps, random_start=spec.random_start)
        return with_restarts(attack, view, spec.restarts) if spec.restarts > 1 else attack
    if isinstance(spec, SquareParams):
        return torchattacks.Square(view, norm="Linf", eps=spec.eps, n_queries=spec.queries, n_restarts=1,
                                   loss=spec.loss, seed=seed)
    if isinstance(spec, AutoAttackParams):
        if classes < 4:
            raise OpError(f"autoattack(...) needs at least 4 classes (its targeted DLR loss compares the 4 largest "
                          f"logits), the classifier has {classes}", field=field)
        return torchattacks.AutoAttack(view, norm="Linf", eps=spec.eps, version=spec.version, n_classes=classes,
                                       seed=seed)
    raise OpError(f"not an attack: {spec!r}", field=field)


class Perturber:
    """`perturb` for many batches of one kind of data: the view of the classifier and, for attacks that
    draw from torch's random state (fgsm, pgd: seeded per batch by forking it), the attack object are
    built once, as a caller of torchattacks would; square and autoattack take their seed when built."""

    def __init__(self, net: nn.Module, spec, lo: float, hi: float, data_shape: list[int], *, classes: int,
                 temperature: float = 1.0, field: str = "attack"):
        if not hi > lo:
            raise OpError(f"the data's feature range [{lo:g}, {hi:g}] is empty: an eps relative to it means "
                          "nothing", field="data")
        self.spec, self.lo, self.hi, self.classes, self.field = spec, lo, hi, classes, field
        self.shape = attack_shape(spec, list(data_shape), field)
        self.view = AttackView(net, lo, hi, temperature, list(data_shape))
        if self.view.identity and self.view.temperature == 1.0 and self.shape == list(data_shape):
            self.view = net  # the view would change nothing: the attack calls the classifier itself
        seeded_by_torch = isinstance(spec, (FgsmParams, PgdParams))
        self.attack = build(spec, self.view, classes, 0, field) if seeded_by_torch else None

    def __call__(self, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> torch.Tensor:
        lo, hi = self.lo, self.hi
        attack = self.attack or build(self.spec, self.view, self.classes, seed, self.field)
        unit = lo == 0.0 and hi == 1.0  # x - 0 and x / 1 are x bit for bit: skip them
        u = (x if unit else (x - lo) / (hi - lo)).clamp(0, 1).reshape(len(x), *self.shape)
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            # the CPU generator alone: torch.manual_seed would also queue a seed for every CUDA device
            # (outside the fork, and ~0.14 ms a call for the stack it records)
            torch.default_generator.manual_seed(seed)
            if devices:
                torch.cuda.manual_seed(seed)
            u_adv = attack(u.detach(), y)
        change = u_adv - u
        return (x + (change if unit else change * (hi - lo)).reshape(x.shape)).detach()


def perturb(net: nn.Module, x: torch.Tensor, y: torch.Tensor, spec, lo: float, hi: float, *, classes: int,
            temperature: float = 1.0, seed: int = 0, field: str = "attack") -> torch.Tensor:
    """The adversarial version of the batch `x` (data units, shape [n, *shape]) for labels `y`: the
    attack runs on u = (x - lo) / (hi - lo) in [0, 1] and its change is mapped back, so an input it
    leaves alone comes back bit for bit. Seeded by `seed` alone; torch's global random state is left
    as it was. A problem with the attack is an OpError on `field` (fit's is "adversarial")."""
    return Perturber(net, spec, lo, hi, list(x.shape[1:]), classes=classes, temperature=temperature,
                     field=field)(x, y, seed)
