"""Novelty of a candidate environment against the environments seen so far.

- By parameters (original POET): Euclidean distance between parameter vectors.
- PATA-EC (Enhanced POET): an environment is described by how it ranks a fixed set of agents: the
  agents' scores on it, clipped to [lo, hi], replaced by centered ranks. Clipping makes every agent
  that fails (or that solves) the environment equal, so ties are common: tied scores get their mean
  rank (the published code ranks by argsort, which orders ties by agent index and makes two
  environments that every agent fails look different). Novelty = mean distance to the k nearest.

The published `update_pata_ec` meant to clip each score with `cap_score(score, lower, upper)`; here the
clip is applied to every score of the vector before ranking, which is the intended behaviour.

Cost. Published PATA-EC scores every agent (active and archived) on every environment at each
reproduction step, which grows quadratically with the archive. Here (see `Poet.novelty`) the agent set
is all active agents plus the most recently archived ones up to `max_agents` (default 20), and a child
is compared with the active environments plus the most recently archived ones up to `max_envs` (default
50); each score is one episode on a fixed per-environment seed, and the scores of archived (frozen)
agents on already admitted (fixed) environments are cached in the run state (and its checkpoints).
A reproduction step therefore costs at most |active| x (max_envs + children) episodes plus the
archived agents' scores on the children, whatever the length of the run.
"""

from __future__ import annotations

import numpy as np


def tied_centered_ranks(x) -> np.ndarray:
    """Centered ranks in [-0.5, 0.5]; tied values share the mean of their ranks."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n <= 1:
        return np.zeros(n)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(n)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks / (n - 1) - 0.5


def pata_ec_vector(scores, clip: tuple[float, float]) -> np.ndarray:
    """One environment's PATA-EC descriptor from the scores of the agent set on it."""
    return tied_centered_ranks(np.clip(np.asarray(scores, dtype=np.float64), clip[0], clip[1]))


def knn_novelty(point: np.ndarray, others: list[np.ndarray], k: int) -> float:
    """Mean Euclidean distance to the k nearest of `others` (all of them when fewer than k)."""
    if not others:
        return 0.0
    d = np.sort(np.array([float(np.linalg.norm(point - o)) for o in others]))
    return float(d[:k].mean())
