"""MLP policies over a flat float64 parameter vector (numpy: a 3-16-1 network costs microseconds per
step, far below a torch call's overhead). Layout: for each layer, W (out x in) row-major, then b."""

from __future__ import annotations

import numpy as np


def layer_sizes(agent: dict) -> list[int]:
    return [int(agent["inputs"]), *[int(h) for h in agent["hidden"]], int(agent["outputs"])]


def n_params(agent: dict) -> int:
    s = layer_sizes(agent)
    return sum(a * b + b for a, b in zip(s[:-1], s[1:]))


def init_theta(agent: dict, rng: np.random.Generator) -> np.ndarray:
    """Glorot-normal weights, zero biases."""
    parts = []
    s = layer_sizes(agent)
    for a, b in zip(s[:-1], s[1:]):
        parts.append(rng.standard_normal(a * b) * np.sqrt(2.0 / (a + b)))
        parts.append(np.zeros(b))
    return np.concatenate(parts)


class Policy:
    """obs -> action. Box actions: tanh outputs scaled to the action bounds (to [-1, 1] where the
    bounds are infinite); Discrete actions: argmax of the outputs."""

    def __init__(self, agent: dict, theta: np.ndarray):
        s = layer_sizes(agent)
        self.layers = []
        i = 0
        for a, b in zip(s[:-1], s[1:]):
            w = theta[i : i + a * b].reshape(b, a)
            i += a * b
            self.layers.append((w, theta[i : i + b]))
            i += b
        self.act = np.tanh if agent.get("activation", "tanh") == "tanh" else (lambda x: np.maximum(x, 0.0))
        kind = agent["action"]
        self.discrete = kind["kind"] == "discrete"
        if not self.discrete:
            lo, hi = np.asarray(kind["low"], float), np.asarray(kind["high"], float)
            ok = np.isfinite(lo) & np.isfinite(hi)
            self.center = np.where(ok, (lo + hi) / 2, 0.0)
            self.half = np.where(ok, (hi - lo) / 2, 1.0)

    def __call__(self, obs):
        x = np.asarray(obs, dtype=np.float64).ravel()
        last = len(self.layers) - 1
        for j, (w, b) in enumerate(self.layers):
            x = w @ x + b
            if j < last:
                x = self.act(x)
        if self.discrete:
            return int(np.argmax(x))
        return self.center + self.half * np.tanh(x)


def action_spec(space) -> tuple[dict, int]:
    """(JSON description of an action space, number of policy outputs)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return {"kind": "discrete", "n": int(space.n)}, int(space.n)
    if isinstance(space, spaces.Box):
        return {"kind": "box", "low": space.low.astype(float).ravel().tolist(), "high": space.high.astype(float).ravel().tolist()}, int(np.prod(space.shape))
    raise ValueError(f"unsupported action space {space}")
