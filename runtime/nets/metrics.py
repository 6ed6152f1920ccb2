"""Metrics of a classifier's logits: accuracy, calibration (ECE, NLL, confidence) and the temperature
that minimizes the NLL. Logits are computed once, in float64 on the CPU, then every metric is exact
arithmetic on them."""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def logits_of(net, X: torch.Tensor, device: str, batch: int = 1024) -> torch.Tensor:
    """The logits of every example (float64, CPU), in eval mode."""
    net.eval()
    out = [net(X[i : i + batch].to(device)).double().cpu() for i in range(0, len(X), batch)]
    return torch.cat(out)


def nll(logits: torch.Tensor, y: torch.Tensor, beta: float = 1.0) -> float:
    """Mean negative log-likelihood of softmax(beta * logits)."""
    z = beta * logits
    return float((torch.logsumexp(z, 1) - z.gather(1, y[:, None])[:, 0]).mean())


def accuracy(logits: torch.Tensor, y: torch.Tensor, classes: int) -> dict:
    pred = logits.argmax(1)
    right = pred == y
    per_class = []
    for c in range(classes):
        mask = y == c
        per_class.append(float(right[mask].double().mean()) if bool(mask.any()) else None)
    acc = float(right.double().mean())
    return {"value": acc, "accuracy": acc, "error": 1.0 - acc, "correct": int(right.sum()), "n": len(y),
            "per_class": per_class}


def calibration(logits: torch.Tensor, y: torch.Tensor, bins: int) -> dict:
    """Expected calibration error over `bins` equal-width confidence bins ((i/B, (i+1)/B]), maximum
    calibration error, NLL, mean confidence and accuracy; per-bin counts, accuracies, confidences."""
    probs = torch.softmax(logits, 1)
    conf, pred = probs.max(1)
    right = (pred == y).double()
    idx = (torch.ceil(conf * bins).long() - 1).clamp(0, bins - 1)
    count = torch.bincount(idx, minlength=bins).double()
    acc_sum = torch.bincount(idx, weights=right, minlength=bins)
    conf_sum = torch.bincount(idx, weights=conf, minlength=bins)
    filled = count > 0
    acc_b = torch.where(filled, acc_sum / count.clamp(min=1), torch.zeros_like(count))
    conf_b = torch.where(filled, conf_sum / count.clamp(min=1), torch.zeros_like(count))
    gap = (acc_b - conf_b).abs()
    ece = float((count / len(y) * gap).sum())
    return {
        "value": ece,
        "ece": ece,
        "mce": float(gap[filled].max()) if bool(filled.any()) else 0.0,
        "nll": nll(logits, y),
        "confidence": float(conf.mean()),
        "accuracy": float(right.mean()),
        "bins": bins,
        "reliability": {"count": [int(c) for c in count.tolist()],
                        "accuracy": [a if f else None for a, f in zip(acc_b.tolist(), filled.tolist())],
                        "confidence": [c if f else None for c, f in zip(conf_b.tolist(), filled.tolist())]},
    }


BETA_RANGE = (1e-4, 1e4)  # temperatures from 1e-4 to 1e4


def best_temperature(logits: torch.Tensor, y: torch.Tensor, tol: float = 1e-12) -> tuple[float, bool]:
    """(T minimizing the NLL of softmax(logits / T), whether T is at an end of [1e-4, 1e4]).

    The NLL is convex in beta = 1/T (a log-sum-exp of linear functions minus a linear one), its
    derivative E_p[z] - z_y averaged over examples, its second derivative the mean variance of z
    under p: Newton steps on beta, kept inside a bracket of the root of the derivative (bisection,
    geometric, whenever a step leaves it)."""
    zy = logits.gather(1, y[:, None])[:, 0]

    def derivatives(beta: float) -> tuple[float, float]:
        p = torch.softmax(beta * logits, 1)
        mean = (p * logits).sum(1)
        var = (p * logits.square()).sum(1) - mean.square()
        return float((mean - zy).mean()), float(var.clamp(min=0).mean())

    lo, hi = BETA_RANGE
    if derivatives(lo)[0] >= 0:
        return 1.0 / lo, True
    if derivatives(hi)[0] <= 0:
        return 1.0 / hi, True
    beta = 1.0
    for _ in range(200):
        g, h = derivatives(beta)
        if g > 0:
            hi = beta
        else:
            lo = beta
        nxt = beta - g / h if h > 0 else math.nan
        if not (lo < nxt < hi):
            nxt = math.sqrt(lo * hi)
        if abs(nxt - beta) <= tol * beta or hi / lo - 1 <= tol:
            beta = nxt
            break
        beta = nxt
    return 1.0 / beta, False
