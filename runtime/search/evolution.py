"""`evolution(...)`: a generational genetic algorithm with elitism, tournament selection and optional
novelty search, over any mix of genome and numeric params (expc.runtime.search.genes).

A generation: the first is the default candidate and `population - 1` random ones (or the default's
mutants with init = "default"). Then the next generation is the `elite` best of the current
population by fitness, carried over without being evaluated again, and `population - elite`
offspring: parents picked by DEAP's selTournament on the selection score, paired, crossed over with
probability `crossover`, each child mutated with probability `mutation` (DEAP's varAnd rule, written
out here because varAnd needs DEAP individuals with fitness objects and these are JSON bindings).

Selection score without novelty: the fitness. With novelty (Lehman & Stanley): a candidate's novelty
is the mean Euclidean distance from its behaviour to the `k` nearest behaviours among the rest of the
population and the archive; fitness and novelty are each turned into a rank share in [0, 1] over the
population (worst 0, best 1; a failed candidate 0 for both), and

    score = (1 - weight) * fitness_rank + weight * novelty_rank.

The archive then takes the behaviours of this generation's evaluated candidates, the oldest dropped
beyond `archive` entries (first in, first out). DEAP has no novelty search: this is hand-written.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from deap import tools

from expc.runtime.genomes.global_random import drawing_from
from expc.runtime.search.genes import Genes
from expc.runtime.search.strategy import Strategy, Told


@dataclass
class Member:
    bindings: dict[str, Any]
    fitness: float | None  # to maximize; None: failed or pruned
    behaviour: list[float] | None = None
    score: float = -math.inf


class Evolution(Strategy):
    def __init__(self, cfg, space):
        self.cfg = cfg
        self.genes = Genes(space)
        self.rng = random.Random(int(cfg.seed))
        self.population: list[Member] = []
        self.asked: list[dict[str, Any]] = []
        self.archive: list[list[float]] = []
        self.stats: dict[str, Any] = {}
        n = cfg.novelty  # built (NoveltyParams), or its wire form when the params were validated directly
        if isinstance(n, dict):
            from expc.runtime.ops.strategies import NoveltyParams

            n = NoveltyParams.model_validate({k: v for k, v in n.items() if k != "$op"})
        self.novelty = n

    # -- ask -----------------------------------------------------------------------------------------

    def ask(self) -> list[dict[str, Any]]:
        n = int(self.cfg.population)
        if not self.population:
            first = self.genes.initial(self.rng, default=True)
            rest = [self.genes.mutate(first, self.rng) if self.cfg.init == "default"
                    else self.genes.initial(self.rng, default=False) for _ in range(n - 1)]
            self.asked = [first, *rest]
        else:
            self.asked = self._offspring(n - len(self._elites()))
        return [dict(b) for b in self.asked]

    def _elites(self) -> list[Member]:
        ranked = sorted(self.population, key=lambda m: -_key(m.fitness))  # stable: earlier wins ties
        return [m for m in ranked[: int(self.cfg.elite)] if m.fitness is not None]

    def _offspring(self, n: int) -> list[dict[str, Any]]:
        sel = self.cfg.selection
        size = int(sel.get("size", 3) if isinstance(sel, dict) else getattr(sel, "size", 3))
        with drawing_from(self.rng):
            parents = tools.selTournament(self.population, n + (n % 2), tournsize=size, fit_attr="score")
        out: list[dict[str, Any]] = []
        for a, b in zip(parents[::2], parents[1::2]):
            c1, c2 = dict(a.bindings), dict(b.bindings)
            if self.rng.random() < self.cfg.crossover:
                c1, c2 = self.genes.crossover(c1, c2, self.rng)
            for c in (c1, c2):
                out.append(self.genes.mutate(c, self.rng) if self.rng.random() < self.cfg.mutation else c)
        return out[:n]

    # -- tell ----------------------------------------------------------------------------------------

    def tell(self, results: list[Told]) -> None:
        if len(results) != len(self.asked):
            raise ValueError(f"told {len(results)} results for {len(self.asked)} candidates")
        new = [Member(b, r.fitness if r.fitness is not None and math.isfinite(r.fitness) else None, r.behaviour)
               for b, r in zip(self.asked, results)]
        pool = [Member(m.bindings, m.fitness, m.behaviour) for m in self._elites()] + new if self.population else new
        fit_rank = _rank_shares([m.fitness for m in pool])
        stats: dict[str, Any] = {"species": [len(pool)], "elites": len(pool) - len(new)}
        if self.novelty is not None:
            nov = self._novelty(pool)
            nov_rank = _rank_shares(nov)
            w = float(self.novelty.weight)
            for m, f, v in zip(pool, fit_rank, nov_rank):
                m.score = (1 - w) * f + w * v if m.fitness is not None else -math.inf
            for m in new:
                if m.behaviour is not None:
                    self.archive.append(list(m.behaviour))
            del self.archive[: max(0, len(self.archive) - int(self.novelty.archive))]
            known = [x for x in nov if x is not None]
            stats.update(novelty=sum(known) / len(known) if known else None, archive=len(self.archive))
        else:
            for m in pool:
                m.score = m.fitness if m.fitness is not None else -math.inf
        self.population = pool
        self.stats = stats

    def _novelty(self, pool: list[Member]) -> list[float | None]:
        k = int(self.novelty.k)
        out: list[float | None] = []
        for i, m in enumerate(pool):
            if m.behaviour is None or m.fitness is None:
                out.append(None)
                continue
            others = [o.behaviour for j, o in enumerate(pool) if j != i and o.behaviour is not None] + self.archive
            ds = sorted(_euclid(m.behaviour, o) for o in others)[:k]
            out.append(sum(ds) / len(ds) if ds else 0.0)
        return out

    def generation_stats(self) -> dict[str, Any]:
        return dict(self.stats)

    def members(self) -> list[tuple[dict[str, Any], float | None]]:
        """The current population (bindings, fitness), elites first: what the driver's stats read."""
        return [(m.bindings, m.fitness) for m in self.population]


def _key(f: float | None) -> float:
    return -math.inf if f is None else f


def _rank_shares(xs: list[float | None]) -> list[float]:
    """Each value's rank as a share in [0, 1] (worst 0, best 1; ties share their mean rank); None is 0."""
    idx = [i for i, x in enumerate(xs) if x is not None]
    out = [0.0] * len(xs)
    if len(idx) < 2:
        for i in idx:
            out[i] = 1.0
        return out
    order = sorted(idx, key=lambda i: xs[i])
    pos = 0
    while pos < len(order):
        end = pos
        while end + 1 < len(order) and xs[order[end + 1]] == xs[order[pos]]:
            end += 1
        share = (pos + end) / 2 / (len(order) - 1)
        for i in order[pos:end + 1]:
            out[i] = share
        pos = end + 1
    return out


def _euclid(a: list[float], b: list[float]) -> float:
    if len(a) != len(b):
        raise ValueError(f"behaviours of different lengths ({len(a)} and {len(b)}): a behaviour must have the "
                         "same size for every candidate")
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
