"""The attack success rate of `attack_success` (runtime/ops/attacks.py), and the IOR diagnostics.

ASR = (correct examples the attack flips) / (correct examples): misclassified examples are not
attacked and do not count. Robust accuracy = (correct and not flipped) / n.

The IOR diagnostics (Raina et al. 2024, arXiv 2402.17509), among the correct examples, for the logits
the attack sees (logits / temperature), in float32:
- zero_grad_share: the cross-entropy's input gradient is exactly zero. With logits scaled by 1e4, the
  softmax of a confidently correct example is exactly one-hot, so p - onehot = 0 and FGSM/PGD (ce)
  take no step;
- flat_share: the class probabilities are exactly equal. With logits scaled by 1e-10, every
  exp(z - max z) rounds to 1, so a score-based attack on probabilities (square, loss "ce") sees the
  same loss for every input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from expc.runtime.api import OpError, node_seed
from expc.runtime.attacks.build import Perturber


def diagnostics(net, x: torch.Tensor, y: torch.Tensor,
                temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(correctly classified, zero gradient, flat probabilities), one bool per example, for logits /
    temperature in float32. The loss is summed, so each example's gradient is its own (a mean would
    scale it by 1/n)."""
    xg = x.detach().requires_grad_(True)  # a new leaf on the same storage; autograd.grad writes nothing
    z = net(xg).float()
    right = z.detach().argmax(1) == y
    if temperature != 1.0:
        z = z / temperature
    (grad,) = torch.autograd.grad(F.cross_entropy(z, y, reduction="sum"), xg)
    # all zero <=> the largest |g| is 0 (NaN is not zero, as with ==): the same test as comparing every
    # element, at a tenth of the cost of torch's bool reductions over short rows
    zero = grad.flatten(1).abs().amax(1) == 0
    return right, zero, _flat(z.detach())


FLAT_SPREAD = 1e-3


def _flat(z: torch.Tensor) -> torch.Tensor:
    """Per row, whether softmax(z) has all probabilities exactly equal. Only rows whose logits lie
    within FLAT_SPREAD of each other can: elsewhere exp(z - max z) differs between two classes by a
    factor of at least e^1e-3, far beyond float32 rounding (a few ulps, ~1e-7), and scaling both by
    1 / sum cannot make them equal. The softmax, which defines the test, runs on the other rows only."""
    lo, hi = torch.aminmax(z, dim=1)
    maybe = ~(hi - lo >= FLAT_SPREAD)  # NaN spreads are checked too
    flat = torch.zeros_like(maybe)
    if bool(maybe.any()):
        p = torch.softmax(z[maybe], 1)
        flat[maybe] = p.amax(1) == p.amin(1)
    return flat


def success(net, X: torch.Tensor, y: torch.Tensor, spec, lo: float, hi: float, *, classes: int,
            temperature: float = 1.0, batch: int = 512, seed: int = 0, device: str = "cpu",
            diagnose: bool = True) -> dict:
    """The attack success rate of `spec` on (X, y) (data units, CPU tensors) and its details."""
    net.eval()
    correct = flipped = zero = flat = 0
    moved = 0.0
    attack = Perturber(net, spec, lo, hi, list(X.shape[1:]), classes=classes, temperature=temperature)
    for b, i in enumerate(range(0, len(X), batch)):
        xb, yb = X[i : i + batch].to(device), y[i : i + batch].to(device)
        # one forward pass gives both which inputs are classified correctly (only those are attacked)
        # and, per input, the IOR diagnostics (each input's gradient is its own: the loss is summed)
        if diagnose:
            right, z0, f0 = diagnostics(net, xb, yb, temperature)
        else:  # correctness only: no input gradient (the diagnostics' backward pass)
            with torch.no_grad():
                right = net(xb).argmax(1) == yb
        n_right = int(right.sum())
        if n_right == 0:
            continue
        if diagnose:
            zero += int((z0 & right).sum())
            flat += int((f0 & right).sum())
        if n_right < len(yb):
            xb, yb = xb[right], yb[right]
        adv = attack(xb, yb, seed=seed * 1_000_003 + b)
        with torch.no_grad():
            fooled = net(adv).argmax(1) != yb
        correct += n_right
        flipped += int(fooled.sum())
        moved = max(moved, float((adv - xb).abs().max()) / (hi - lo))
    n = len(X)
    if correct == 0:
        raise OpError(f"the model classifies none of the {n} examples correctly: there is nothing to attack",
                      field="data")
    return {
        "value": flipped / correct,
        "asr": flipped / correct,
        "robust_accuracy": (correct - flipped) / n,
        "clean_accuracy": correct / n,
        "zero_grad_share": zero / correct if diagnose else None,
        "flat_share": flat / correct if diagnose else None,
        "n": n,
        "correct": correct,
        "flipped": flipped,
        "temperature": temperature,
        "eps": spec.eps,
        "eps_data": spec.eps * (hi - lo),
        "max_perturbation": moved,
        "attack": spec.describe(),
    }


def temperature_of(value) -> float:
    """The attacker's temperature from a number, a metric ({"value": T, ...}) or a metric's .value."""
    t = value.get("value") if isinstance(value, dict) else value
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
        raise OpError(f"the temperature must be a positive number, got {t!r}", field="temperature",
                      hint="a metric given as temperature is read by its value (calibrate(...) gives one)")
    return float(t)


def run_attack_success(p, ctx) -> dict:
    """The `attack_success` operator: load the classifier and the data, attack, count."""
    from expc.runtime.nets.load import load_classifier
    from expc.runtime.train.fit import threads_for

    temperature = temperature_of(p.temperature)
    net, config = load_classifier(p.model, ctx.device)
    threads_for(net, ctx.workers)
    data = p.data
    if list(data.shape) != list(config["input_shape"]):
        raise OpError(f"the classifier takes examples of shape {config['input_shape']}, the data has "
                      f"{list(data.shape)}", field="data")
    X, y = data.load()
    if p.n is not None:
        X, y = X[: p.n], y[: p.n]
    classes = int(config["classes"])
    if len(y) and int(y.max()) >= classes:
        raise OpError(f"label {int(y.max())} is not a class of the classifier ({classes} classes)", field="data")
    return success(net, torch.from_numpy(X), torch.from_numpy(y), p.attack, float(data.lo), float(data.hi),
                   classes=classes, temperature=temperature, batch=p.batch, seed=node_seed(p.seed, ctx.seed), device=ctx.device,
                   diagnose=p.diagnose)
