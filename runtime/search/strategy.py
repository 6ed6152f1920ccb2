"""The protocol of a search strategy (`search NAME { strategy = evolution(...), generations = N }`), an
alternative to Optuna's samplers: ask a generation of candidates, evaluate them all (through the same
ctx.map as parallel trials), tell their fitnesses, repeat. No torch here.

A strategy operator is inline, returns the value type `strategy`, and its params model subclasses
StrategyParams. The search driver owns storage and resume: a strategy is deterministic given its
seed and the results it was told, so a resumed search replays the stored generations' results
through ask/tell and continues from the last finished generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from expc.runtime.capabilities import Distribution
from expc.runtime.params import Params


@dataclass
class Told:
    """What a candidate's evaluation gave: `fitness` is the objective as a number to MAXIMIZE (the
    driver negates a minimized objective), None when the candidate failed or was pruned;
    `measures` holds the search's measures; `behaviour` the novelty behaviour vector, if any."""

    fitness: float | None
    measures: dict[str, float] = field(default_factory=dict)
    behaviour: list[float] | None = None


class Strategy:
    """One running strategy. `ask()` returns the next generation as param bindings ({param: value};
    genome params get genomes), `tell()` receives one Told per asked candidate, in order."""

    def ask(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def tell(self, results: list[Told]) -> None:
        raise NotImplementedError

    def members(self) -> list[tuple[dict[str, Any], float | None]]:
        """The population after the last tell, as (bindings, fitness): the driver's per-generation best,
        mean and diversity are over it. Empty (the default): over the candidates just told."""
        return []

    def generation_stats(self) -> dict[str, Any]:
        """JSON facts about the generation just told (e.g. {"species": [sizes], "diversity": x}):
        the search result keeps them per generation for the history/species/diversity plots."""
        return {}


class StrategyParams(Params):
    """A strategy's configuration; the search receives it validated and starts it."""

    seed: int = Field(0, description="strategy seed: the same seed gives the same populations")

    def start(self, space: dict[str, Distribution]) -> Strategy:
        """A fresh strategy over the searched params (name -> distribution; architecture params are
        expc.runtime.capabilities.Genome)."""
        raise NotImplementedError

    def behaviour(self) -> str | None:
        """The measure whose value (a number or a vector) the driver passes as Told.behaviour (novelty
        search); None: the strategy needs none."""
        return None
