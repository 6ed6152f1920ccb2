"""The seeds of a continual run's draws: each a function of the run's seed and where it is drawn (the
task, the step, the purpose), so a resumed run draws exactly what an uninterrupted one would."""

from __future__ import annotations

import torch


def seed_of(*parts: int) -> int:
    h = 0
    for x in parts:
        h = (h * 0x9E3779B97F4A7C15 + int(x) + 1) % 2**63
    return h


def generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed_of(*parts))
