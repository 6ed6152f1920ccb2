"""What a worker runs: episodes of one policy (optionally perturbed by seed-derived noise) on one
environment. Tasks and results are plain JSON-able values, so any executor can carry them.

task = {"env": {"id", "kwargs", "horizon"}, "agent": {...layer sizes, action}, "theta": [floats],
        "sigma": float, "items": [[noise_seed, sign, episode_seed], ...]}
result = [[return, steps], ...] in item order; sign 0 evaluates theta itself.
"""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np

_ENVS: OrderedDict[str, object] = OrderedDict()
_MAX_ENVS = 32


def noise(seed: int, n: int) -> np.ndarray:
    """The ES perturbation of one population member: regenerated from its seed, never stored."""
    return np.random.default_rng(seed).standard_normal(n)


def _env(config: dict):
    from expc.runtime.poet.envs import make_env

    key = json.dumps(config, sort_keys=True)
    env = _ENVS.get(key)
    if env is None:
        env = make_env(config)
        _ENVS[key] = env
        while len(_ENVS) > _MAX_ENVS:
            _ENVS.popitem(last=False)[1].close()
    else:
        _ENVS.move_to_end(key)
    return env


def episode(env, policy, seed: int) -> tuple[float, int]:
    obs, _ = env.reset(seed=int(seed))
    total, steps = 0.0, 0
    while True:
        obs, r, terminated, truncated, _ = env.step(policy(obs))
        total += float(r)
        steps += 1
        if terminated or truncated:
            return total, steps


def run_task(task: dict) -> list[list[float]]:
    from expc.runtime.poet.policy import Policy

    env = _env(task["env"])
    theta = np.asarray(task["theta"], dtype=np.float64)
    sigma = float(task.get("sigma", 0.0))
    out = []
    for noise_seed, sign, ep_seed in task["items"]:
        th = theta if sign == 0 else theta + sign * sigma * noise(int(noise_seed), theta.size)
        ret, steps = episode(env, Policy(task["agent"], th), ep_seed)
        out.append([ret, steps])
    return out
