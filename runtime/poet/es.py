"""The evolution strategy of POET: mirrored sampling, centered-rank returns, seed-derived noise, Adam.

One step: for i < population/2 draw a noise seed and an episode seed; evaluate theta + sigma*eps_i
and theta - sigma*eps_i on the same episode; g = sum_i (r+_i - r-_i) eps_i / population over the
centered ranks r (divided by sigma when `normalize_grads`); the optimizer minimizes l2*theta - g.
sigma and lr then decay towards their floors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from expc.runtime.poet.rollout import noise
from expc.runtime.poet.spec import draw_seeds

if TYPE_CHECKING:
    from expc.runtime.ops.poet import EsParams


def centered_ranks(x) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5] (ties broken by position, as published)."""
    x = np.asarray(x, dtype=np.float64)
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[x.ravel().argsort(kind="stable")] = np.arange(x.size)
    ranks = ranks.reshape(x.shape)
    if x.size <= 1:
        return np.zeros_like(x)
    return ranks / (x.size - 1) - 0.5


@dataclass
class Adam:
    """Adam as in the published code (beta1 0.9, beta2 0.999), minimizing."""

    m: np.ndarray
    v: np.ndarray
    t: int = 0

    @staticmethod
    def fresh(n: int) -> "Adam":
        return Adam(np.zeros(n), np.zeros(n), 0)

    def copy(self) -> "Adam":
        return Adam(self.m.copy(), self.v.copy(), self.t)

    def step(self, grad: np.ndarray, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> np.ndarray:
        self.t += 1
        a = lr * np.sqrt(1 - beta2**self.t) / (1 - beta1**self.t)
        self.m = beta1 * self.m + (1 - beta1) * grad
        self.v = beta2 * self.v + (1 - beta2) * grad * grad
        return -a * self.m / (np.sqrt(self.v) + eps)


def plan_items(es: EsParams, rng: np.random.Generator) -> list[list[int]]:
    """The rollouts of one ES step: [noise_seed, sign, episode_seed] (mirrored pairs share an episode)."""
    if es.mirrored:
        n = es.population // 2
        nseeds, eseeds = draw_seeds(rng, n), draw_seeds(rng, n)
        return [[s, sign, e] for s, e in zip(nseeds, eseeds) for sign in (1, -1)]
    nseeds, eseeds = draw_seeds(rng, es.population), draw_seeds(rng, es.population)
    return [[s, 1, e] for s, e in zip(nseeds, eseeds)]


def gradient(es: EsParams, items: list[list[int]], results: list[list[float]], sigma: float, dim: int) -> np.ndarray:
    """The ES ascent direction from the returns of `plan_items`' rollouts."""
    returns = np.array([r[0] for r in results], dtype=np.float64)
    if es.mirrored:
        ranks = centered_ranks(returns.reshape(-1, 2))
        weights = ranks[:, 0] - ranks[:, 1]
        seeds = [items[2 * i][0] for i in range(len(weights))]
    else:
        weights = centered_ranks(returns)
        seeds = [it[0] for it in items]
    g = np.zeros(dim)
    for w, s in zip(weights, seeds):
        if w != 0.0:
            g += w * noise(s, dim)
    g /= returns.size
    if es.normalize_grads:
        g /= sigma
    return g


def apply(es: EsParams, theta: np.ndarray, opt: Adam, g: np.ndarray, lr: float) -> np.ndarray:
    """theta after one optimizer step on the ascent direction g (with l2 decay)."""
    descent = es.l2 * theta - g
    if es.optimizer == "adam":
        return theta + opt.step(descent, lr)
    return theta - lr * descent


def decay(es: EsParams, sigma: float, lr: float) -> tuple[float, float]:
    return max(sigma * es.sigma_decay, es.sigma_min), max(lr * es.lr_decay, es.lr_min)
