"""Search strategies (`strategy`, inline): asked and told a generation at a time, an alternative to a
sampler in a `search` block.

    param arch ~ mlps(depth = [1, 3], width = [8, 128])
    search evo {
      objective = maximize(acc)
      strategy = evolution(population = 20, elite = 2, selection = tournament(size = 3),
                           novelty = novelty(behaviour = "probs", k = 5, weight = 0.5))
      measure = {probs: outputs}
      generations = 10
    }

The algorithm is in expc.runtime.search.evolution (DEAP's selection and variation operators)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from expc.runtime.registry import Input, Params, op
from expc.runtime.search.strategy import StrategyParams
from expc.runtime.types import value_type

SELECTION = value_type("selection", "how a strategy picks parents: tournament(size)", node=False)


class TournamentParams(Params):
    size: int = Field(3, ge=1, le=1000, description="candidates per tournament: the best of them is a parent")


@op("tournament", params=TournamentParams, returns="selection", inline=True)
def tournament(p: TournamentParams, ctx=None) -> None:
    """Tournament selection: each parent is the best (by selection score) of `size` candidates drawn at
    random from the population. A larger size selects harder."""


class NoveltyParams(Params):
    behaviour: str = Field(min_length=1, description="the name of one of the search's measures: its value per "
                           "candidate (a number or a list of numbers) is the candidate's behaviour")
    k: int = Field(5, ge=1, le=10_000, description="nearest neighbours whose mean distance is the novelty")
    weight: float = Field(0.5, ge=0.0, le=1.0, description="share of novelty in the selection score (0: fitness "
                          "only, 1: novelty only)")
    archive: int = Field(200, ge=0, le=1_000_000, description="past behaviours kept to compare with (first in, "
                         "first out)")


@op("novelty", params=NoveltyParams, returns="novelty", inline=True)
def novelty(p: NoveltyParams, ctx=None) -> None:
    """Novelty search for `evolution(novelty = ...)`: a candidate's novelty is the mean Euclidean distance
    of its behaviour (the measure named by `behaviour`) to the `k` nearest among the rest of the
    population and the archive. Parents are selected on (1 - weight) * fitness rank + weight * novelty
    rank, ranks as shares in [0, 1] over the population."""


class EvolutionParams(StrategyParams):
    population: int = Field(20, ge=2, le=100_000, description="candidates per generation")
    elite: int = Field(2, ge=0, description="best candidates carried over unchanged (not evaluated again)")
    selection: Input["selection"] = Field({"$op": "tournament", "size": 3}, description="tournament(size = 3)")
    crossover: float = Field(0.5, ge=0.0, le=1.0, description="probability that a pair of parents is crossed over")
    mutation: float = Field(0.5, ge=0.0, le=1.0, description="probability that a child is mutated")
    novelty: Input["novelty"] = Field(None, description="novelty(behaviour = MEASURE, k, weight, archive), or none")
    init: Literal["random", "default"] = Field("random", description='the first generation: the default and '
                                               'random candidates ("random"), or the default and its mutants')

    @model_validator(mode="after")
    def _sizes(self):
        if self.elite >= self.population:
            raise ValueError(f"elite ({self.elite}) must be smaller than the population ({self.population})")
        n = self.novelty
        if n is not None and not (hasattr(n, "behaviour") or isinstance(n, dict) and n.get("$op") == "novelty"):
            raise ValueError("expected novelty(behaviour = ..., k = 5, weight = 0.5, archive = 200)")
        return self

    def behaviour(self) -> str | None:
        n = self.novelty
        return None if n is None else (n.behaviour if hasattr(n, "behaviour") else n.get("behaviour"))

    def start(self, space: dict[str, Any]):
        from expc.runtime.search.evolution import Evolution

        return Evolution(self, space)


@op("evolution", params=EvolutionParams, returns="strategy", inline=True)
def evolution(p: EvolutionParams, ctx=None) -> None:
    """A genetic algorithm over the searched params, genomes (mlps, cells, ...) and numbers alike: each
    generation keeps the `elite` best, selects parents by `selection`, crosses pairs over with
    probability `crossover` and mutates children with probability `mutation`; with `novelty` parents
    are selected on fitness and novelty together. The first generation is the params' defaults and
    `population - 1` random candidates. Deterministic given `seed` and the candidates' results."""
