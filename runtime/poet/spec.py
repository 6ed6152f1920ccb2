"""The configuration values of a POET run, read from the inline JSON dicts the compiler folds into the
`poet` call (`{"$op": "mutable", "start": 10, ...}`), and the mutation of environment parameters.

Everything random here takes an explicit numpy Generator: the loop derives one from (seed, iteration,
purpose), so a resumed run draws exactly what an uninterrupted one draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from expc.runtime.api import OpError

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
    that starts switched off (`enabled = false`) is switched on at `start` by its first mutation."""

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


def parse_mutable(name: str, d: dict, field_path: str) -> Mutable:
    op = d.get("$op")
    if op == "mutable":
        lo, hi, start = float(d["min"]), float(d["max"]), float(d["start"])
        if not lo <= start <= hi:
            raise OpError(f"mutable {name!r}: start {start} is outside [min, max] = [{lo}, {hi}]", field=field_path)
        return Mutable(name, "scalar", start, float(d["step"]), lo, hi, int(d.get("digits", 1)))
    if op == "mutable_range":
        start = [float(x) for x in d["start"]]
        mx = d["max"]
        hi = [float(mx), float(mx)] if isinstance(mx, (int, float)) else [float(x) for x in mx]
        if start[0] > start[1] or hi[0] < start[0] or hi[1] < start[1]:
            raise OpError(
                f"mutable_range {name!r}: need start lo <= hi and max >= start, got start {start}, max {hi}",
                field=field_path,
            )
        return Mutable(name, "range", start, float(d["step"]), list(start), hi, int(d.get("digits", 1)), bool(d.get("enabled", True)))
    raise OpError(f"parameter {name!r}: expected a number or mutable(...), got {d!r}", field=field_path)


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


def parse_env(d: Any, field_path: str = "env") -> EnvTemplate:
    if not isinstance(d, dict) or "$op" not in d:
        raise OpError("expected an environment such as gym(\"Pendulum-v1\", g = mutable(10, 1, 5, 20))", field=field_path)
    op = d["$op"]
    body = {k: v for k, v in d.items() if k != "$op"}
    horizon = body.pop("horizon", None)
    if op == "gym":
        env_id = body.pop("id")
    elif op == "bipedal":
        env_id = BIPEDAL_ID
    elif op == "point":
        env_id = POINT_ID
    else:
        raise OpError(f"{op}(...) is not an environment", field=field_path)
    fixed, mutables = {}, []
    for name, v in body.items():
        if isinstance(v, dict) and v.get("$op") in ("mutable", "mutable_range"):
            mutables.append(parse_mutable(name, v, f"{field_path}.{name}"))
        elif v is not None:
            fixed[name] = v
    return EnvTemplate(env_id, fixed, tuple(mutables), None if horizon is None else int(horizon))


@dataclass(frozen=True)
class ESConfig:
    population: int = 512
    sigma: float = 0.1
    sigma_decay: float = 0.999
    sigma_min: float = 0.01
    lr: float = 0.01
    lr_decay: float = 0.9999
    lr_min: float = 0.001
    l2: float = 0.01
    mirrored: bool = True
    eval_episodes: int = 5
    optimizer: str = "adam"
    normalize_grads: bool = True

    @staticmethod
    def parse(d: dict | None) -> "ESConfig":
        if d is None:
            return ESConfig()
        names = ESConfig.__dataclass_fields__
        return ESConfig(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class AgentConfig:
    inputs: int | None = None
    hidden: tuple[int, ...] = (40, 40)
    outputs: int | None = None
    activation: str = "tanh"

    @staticmethod
    def parse(d: dict | None) -> "AgentConfig":
        if d is None:
            return AgentConfig()
        return AgentConfig(d.get("inputs"), tuple(d.get("hidden", (40, 40))), d.get("outputs"), d.get("activation", "tanh"))


@dataclass(frozen=True)
class Every:
    n: int
    children: int = 8
    admit: int = 1
    max_active: int = 40
    fine_tune: bool = True


def parse_every(d: dict | None, default: Every, field_path: str, allowed: set[str]) -> Every:
    if d is None:
        return default
    if d.get("$op") != "every":
        raise OpError(f"expected every(N, ...), got {d.get('$op', d)!r}", field=field_path)
    extra = {k: v for k, v in d.items() if k not in ("$op", "n") and v is not None}
    bad = sorted(set(extra) - allowed)
    if bad:
        what = ", ".join(sorted(allowed)) or "nothing but N"
        raise OpError(f"every(...) in {field_path!r} does not take {', '.join(bad)} (it takes {what})", field=field_path)
    return Every(n=int(d["n"]), **{k: extra.get(k, getattr(default, k)) for k in ("children", "admit", "max_active", "fine_tune")})


@dataclass(frozen=True)
class NoveltyConfig:
    kind: str  # "params" | "pata_ec"
    k: int = 5
    clip: tuple[float, float] | None = None
    normalize: bool = False
    max_agents: int = 20
    max_envs: int = 50


def parse_novelty(d: dict | None, variant: str, criterion: tuple[float, float], field_path: str) -> NoveltyConfig:
    if d is None:
        return NoveltyConfig("pata_ec", clip=criterion) if variant == "enhanced" else NoveltyConfig("params")
    op = d.get("$op")
    if op == "params":
        return NoveltyConfig("params", k=int(d.get("k", 5)), normalize=bool(d.get("normalize", False)))
    if op == "pata_ec":
        clip = d.get("clip") or criterion
        return NoveltyConfig(
            "pata_ec", k=int(d.get("k", 5)), clip=(float(clip[0]), float(clip[1])),
            max_agents=int(d.get("max_agents", 20)), max_envs=int(d.get("max_envs", 50)),
        )
    raise OpError(f"expected params(...) or pata_ec(...), got {op!r}", field=field_path)


@dataclass
class Settings:
    """Everything the loop needs, resolved from the poet operator's params."""

    env: EnvTemplate
    agent: AgentConfig
    es: ESConfig
    variant: str
    iterations: int
    mutate: Every
    criterion: tuple[float, float]
    repro_threshold: float
    solved: float
    transfer: Every
    novelty: NoveltyConfig
    archive: bool
    checkpoint: Every
    seed: int
    extra: dict = field(default_factory=dict)


def derive_rng(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on (seed, keys): the source of every random draw of a run."""
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *[int(k) & 0xFFFFFFFF for k in keys]]))


def draw_seeds(rng: np.random.Generator, n: int) -> list[int]:
    return [int(x) for x in rng.integers(0, 2**31 - 1, size=n)]


def finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
