"""The settings of a POET run and the mutation of environment parameters. The inline values of the `poet`
call arrive built (expc.runtime.registry `Registry.built`): `es(...)`, `mlp(...)`, `every(...)`,
`params(...)`, `pata_ec(...)` as their params models, environments as an `EnvTemplate` whose mutable
parameters are `Mutable`s (built by the operators of expc.runtime.ops.envs).

Everything random here takes an explicit numpy Generator: the loop derives one from (seed, iteration,
purpose), so a resumed run draws exactly what an uninterrupted one draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from expc.runtime.ops.poet import EsParams, EveryParams, MlpParams, ParamsNoveltyParams, PataEcParams

BIPEDAL_ID = "expc/BipedalWalkerPOET-v0"
POINT_ID = "expc/PointReach-v0"

# A parameter value: a number, a [lo, hi] interval, or None (an interval parameter switched off).
Value = Any


@dataclass(frozen=True)
class Mutable:
    """One mutable environment parameter.

    kind "scalar": v' = round(clip(v + U(-step, step), min, max), digits)  (POET's ground roughness).
    kind "range": each end moves by -step, 0 or +step (not both 0), staying within [start_i, max_i]
    and lo <= hi, one of the valid moves picked uniformly (POET's pit gap and stump height). A range
    that starts switched off (`enabled = false`) is switched on at `start` by its first mutation.
    `name` is the environment keyword it sets (empty until the environment holding it names it)."""

    name: str
    kind: str
    start: Value
    step: float
    lo: Any  # scalar: min; range: the lower bounds of both ends (= start)
    hi: Any  # scalar: max; range: [max_lo, max_hi]
    digits: int = 1
    enabled: bool = True

    def initial(self) -> Value:
        if self.kind == "range":
            return list(self.start) if self.enabled else None
        return self.start

    def mutate(self, v: Value, rng: np.random.Generator) -> Value:
        if self.kind == "scalar":
            x = float(v) + rng.uniform(-self.step, self.step)
            return round(min(max(x, self.lo), self.hi), self.digits)
        if v is None:
            return list(self.start)
        choices = []
        for d0 in (self.step, 0.0, -self.step):
            a = round(v[0] + d0, self.digits)
            if a > self.hi[0] or a < self.lo[0]:
                continue
            for d1 in (self.step, 0.0, -self.step):
                b = round(v[1] + d1, self.digits)
                if b > self.hi[1] or b < self.lo[1] or (d0 == 0.0 and d1 == 0.0) or a > b:
                    continue
                choices.append([a, b])
        if not choices:
            return list(v)
        return choices[int(rng.integers(len(choices)))]

    def within(self, v: Value) -> bool:
        if self.kind == "scalar":
            return self.lo - 1e-9 <= v <= self.hi + 1e-9
        if v is None:  # a switched-off interval parameter
            return True
        return (
            self.lo[0] - 1e-9 <= v[0] <= self.hi[0] + 1e-9
            and self.lo[1] - 1e-9 <= v[1] <= self.hi[1] + 1e-9
            and v[0] <= v[1]
        )

    def vector(self, v: Value) -> list[float]:
        """Coordinates for novelty by parameters; a switched-off range counts as [0, 0] (as published)."""
        if self.kind == "scalar":
            return [float(v)]
        return [0.0, 0.0] if v is None else [float(v[0]), float(v[1])]


@dataclass(frozen=True)
class EnvTemplate:
    """An environment family: a gymnasium id, fixed keyword arguments and mutable ones."""

    id: str
    fixed: dict
    mutables: tuple[Mutable, ...]
    horizon: int | None

    def initial(self) -> dict:
        return {m.name: m.initial() for m in self.mutables}

    def mutate(self, params: dict, rng: np.random.Generator) -> dict:
        return {m.name: m.mutate(params[m.name], rng) for m in self.mutables}

    def config(self, params: dict) -> dict:
        """The JSON a worker builds the environment from."""
        return {"id": self.id, "kwargs": {**self.fixed, **params}, "horizon": self.horizon}

    def vector(self, params: dict) -> np.ndarray:
        return np.array([x for m in self.mutables for x in m.vector(params[m.name])], dtype=np.float64)

    def scales(self) -> np.ndarray:
        """Per-coordinate widths of the parameter space (for normalized novelty by parameters)."""
        out = []
        for m in self.mutables:
            if m.kind == "scalar":
                out.append((m.hi - m.lo) or 1.0)
            else:
                out += [(m.hi[0] - m.lo[0]) or 1.0, (m.hi[1] - m.lo[1]) or 1.0]
        return np.array(out, dtype=np.float64)

    def key(self, params: dict) -> str:
        """Identity of an environment for deduplication."""
        return repr(sorted((k, v) for k, v in params.items()))


@dataclass
class PoetSettings:
    """Everything the loop needs, resolved from the poet operator's params."""

    env: EnvTemplate
    agent: MlpParams
    es: EsParams
    variant: str
    iterations: int
    mutate: EveryParams
    criterion: tuple[float, float]
    repro_threshold: float
    solved: float
    transfer: EveryParams
    novelty: ParamsNoveltyParams | PataEcParams
    archive: bool
    checkpoint: EveryParams
    seed: int
    extra: dict = field(default_factory=dict)


def derive_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on (seed, keys): the source of every random draw of a run."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *[int(k) & 0xFFFFFFFF for k in keys]]))


def draw_seeds(rng: np.random.Generator, n: int) -> list[int]:
    return [int(x) for x in rng.integers(0, 2**31 - 1, size=n)]


def finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
