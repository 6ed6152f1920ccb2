"""What a strategy does to one searched param's value, whatever its distribution: sample, mutate,
cross over, compare. A Genome does these itself; a numeric or categorical param is described by its
Optuna distribution (bounds, log scale, step, choices).

Numeric mutation is DEAP's mutGaussian (sigma a tenth of the range, in log space for a log-scale
param), then clipped to the bounds and snapped to the step; numeric and categorical crossover is
DEAP's cxUniform over those params. DEAP draws from the global `random` module, so it runs inside
`drawing_from(rng)`, which seeds that module from the strategy's own generator and restores it after:
a strategy stays a function of its seed and what it was told.
"""

from __future__ import annotations

import math
import random
from typing import Any

from deap import tools
from optuna.distributions import CategoricalDistribution, IntDistribution

from expc.runtime.capabilities import Distribution, Genome
from expc.runtime.genomes.global_random import drawing_from

class Genes:
    """The searched params of a strategy: name -> distribution, genome params apart."""

    def __init__(self, space: dict[str, Distribution]):
        self.space = dict(space)
        self.genomes = [n for n, d in space.items() if isinstance(d, Genome)]
        self.plain = {n: d.optuna() for n, d in space.items() if not isinstance(d, Genome)}

    # -- one value ---------------------------------------------------------------------------------

    def default(self, name: str, rng: random.Random) -> Any:
        d = self.space[name]
        if isinstance(d, Genome):
            return d.default_genome()
        v = d.default_value()
        return self.sample(name, rng) if v is None else v

    def sample(self, name: str, rng: random.Random) -> Any:
        d = self.space[name]
        if isinstance(d, Genome):
            return d.sample(rng)
        o = self.plain[name]
        if isinstance(o, CategoricalDistribution):
            return o.choices[rng.randrange(len(o.choices))]
        lo, hi = (math.log(o.low), math.log(o.high)) if o.log else (o.low, o.high)
        x = rng.uniform(lo, hi)
        return self._snap(o, math.exp(x) if o.log else x)

    @staticmethod
    def _snap(o, x: float) -> Any:
        x = min(o.high, max(o.low, x))
        if isinstance(o, IntDistribution):
            step = o.step or 1
            return int(min(o.high, o.low + round((x - o.low) / step) * step))
        return float(x)

    # -- a candidate (bindings) ----------------------------------------------------------------------

    def initial(self, rng: random.Random, default: bool) -> dict[str, Any]:
        return {n: self.default(n, rng) if default else self.sample(n, rng) for n in self.space}

    def mutate(self, b: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """Each param mutated with probability 1/len (at least one): a genome by its own mutate(), a
        number by a gaussian step within the bounds, a choice by another option."""
        names = list(self.space)
        chosen = [n for n in names if rng.random() < 1.0 / len(names)] or [names[rng.randrange(len(names))]]
        out = dict(b)
        numeric = [n for n in chosen if n in self.plain and not isinstance(self.plain[n], CategoricalDistribution)]
        for n in chosen:
            if n in self.genomes:
                out[n] = self.space[n].mutate(b[n], rng)
            elif isinstance(self.plain[n], CategoricalDistribution):
                others = [c for c in self.plain[n].choices if c != b[n]]
                if others:
                    out[n] = others[rng.randrange(len(others))]
        if numeric:
            os_ = [self.plain[n] for n in numeric]
            xs = [math.log(b[n]) if o.log else float(b[n]) for n, o in zip(numeric, os_)]
            sigmas = [0.1 * ((math.log(o.high) - math.log(o.low)) if o.log else (o.high - o.low)) or 1.0
                      for o in os_]
            with drawing_from(rng):
                (xs,) = tools.mutGaussian(xs, mu=0.0, sigma=sigmas, indpb=1.0)
            for n, o, x in zip(numeric, os_, xs):
                out[n] = self._snap(o, math.exp(x) if o.log else x)
        return out

    def crossover(self, a: dict[str, Any], b: dict[str, Any], rng: random.Random) -> tuple[dict, dict]:
        """Genomes by their own crossover(); the other params by uniform crossover (each swapped with
        probability 1/2)."""
        c1, c2 = dict(a), dict(b)
        for n in self.genomes:
            c1[n], c2[n] = self.space[n].crossover(a[n], b[n], rng)
        plain = list(self.plain)
        if plain:
            x1, x2 = [a[n] for n in plain], [b[n] for n in plain]
            with drawing_from(rng):
                x1, x2 = tools.cxUniform(x1, x2, indpb=0.5)
            c1.update(zip(plain, x1))
            c2.update(zip(plain, x2))
        return c1, c2

    def distance(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        """Sum over the params: a genome's distance(); a number's difference as a share of its range
        (of its logs for a log-scale param); 1 for different choices."""
        d = 0.0
        for n in self.genomes:
            d += self.space[n].distance(a[n], b[n])
        for n, o in self.plain.items():
            if isinstance(o, CategoricalDistribution):
                d += float(a[n] != b[n])
            elif o.log:
                d += abs(math.log(a[n]) - math.log(b[n])) / ((math.log(o.high) - math.log(o.low)) or 1.0)
            else:
                d += abs(a[n] - b[n]) / ((o.high - o.low) or 1.0)
        return d

    def contains(self, b: dict[str, Any]) -> str | None:
        for n, d in self.space.items():
            why = d.contains(b.get(n))
            if why is not None:
                return f"{n} {why}"
        return None

