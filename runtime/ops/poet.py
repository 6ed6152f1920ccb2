"""POET operators: the `poet` block (kind poet), its inline configuration (`es`, `every`, `params`,
`pata_ec`; the agent is an `mlp`, declared with the architectures in nets.py) and the `annecs` metric.
Defaults follow the published BipedalWalker settings of POET / Enhanced POET. The inline values reach
`poet` as their validated params models (what their functions return). The run itself lives in
expc.runtime.poet (imported only when a run starts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from expc.runtime.api import Artifact, OpError
from expc.runtime.ops.nets import MlpParams, mlp  # noqa: F401  (the agent: an architecture declared with nets)
from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type

ES = value_type("es", "an evolution-strategy configuration", node=False)
SCHEDULE = value_type("schedule", "a schedule (every N iterations, ...)", node=False)
NOVELTY = value_type("novelty", "a novelty measure", node=False)


class EsParams(Params):
    population: int = Field(512, ge=2, le=1_000_000, description="perturbations per step (even when mirrored)")
    sigma: float = Field(0.1, gt=0, le=10, description="noise standard deviation")
    sigma_decay: float = Field(0.999, gt=0, le=1, description="sigma *= sigma_decay each step")
    sigma_min: float = Field(0.01, ge=0, le=10, description="floor of sigma")
    lr: float = Field(0.01, gt=0, le=10, description="learning rate")
    lr_decay: float = Field(0.9999, gt=0, le=1, description="lr *= lr_decay each step")
    lr_min: float = Field(0.001, ge=0, le=10, description="floor of lr")
    l2: float = Field(0.01, ge=0, le=10, description="L2 coefficient")
    mirrored: bool = Field(True, description="antithetic pairs +eps / -eps")
    eval_episodes: int = Field(5, ge=1, le=10_000, description="episodes scoring the agent after each step")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="update rule")
    normalize_grads: bool = Field(True, description="divide the gradient by sigma (as published)")

    @model_validator(mode="after")
    def _even(self):
        if self.mirrored and self.population % 2:
            raise ValueError(f"population must be even with mirrored sampling, got {self.population}")
        return self


@op("es", params=EsParams, returns="es", inline=True)
def es(p: EsParams, ctx=None) -> EsParams:
    """Evolution strategy settings (centered ranks, mirrored sampling, Adam)."""
    return p


class EveryParams(Params):
    n: int = Field(ge=1, le=10_000_000, description="period in iterations")
    children: int | None = Field(None, ge=1, le=10_000, description="mutate: children tried per reproduction")
    admit: int | None = Field(None, ge=1, le=10_000, description="mutate: children admitted at most per reproduction")
    max_active: int | None = Field(None, ge=1, le=100_000, description="mutate: active pairs at most (oldest archived)")
    fine_tune: bool | None = Field(None, description="transfer: also try each agent after one ES step on the target")


@op("every", params=EveryParams, returns="schedule", inline=True)
def every(p: EveryParams, ctx=None) -> EveryParams:
    """A schedule: every n iterations (with per-use settings)."""
    return p


class ParamsNoveltyParams(Params):
    kind: ClassVar[str] = "params"
    k: int = Field(5, ge=1, le=1000, description="nearest neighbours averaged")
    normalize: bool = Field(False, description="scale each parameter by its range (published: no)")


@op("params", params=ParamsNoveltyParams, returns="novelty", inline=True)
def params(p: ParamsNoveltyParams, ctx=None) -> ParamsNoveltyParams:
    """Novelty by environment parameters (original POET)."""
    return p


def _check_clip(v):
    if v is not None and (len(v) != 2 or v[0] >= v[1]):
        raise ValueError(f"expected [lo, hi] with lo < hi, got {v}")
    return v


class PataEcParams(Params):
    kind: ClassVar[str] = "pata_ec"
    k: int = Field(5, ge=1, le=1000, description="nearest neighbours averaged")
    clip: list[float] | None = Field(None, description="[lo, hi] scores are clipped to (default: the criterion)")
    max_agents: int = Field(20, ge=2, le=100_000, description="agents ranked: all active, then the most recently archived")
    max_envs: int = Field(50, ge=1, le=100_000, description="environments compared: all active, then the most recently archived")

    @field_validator("clip")
    @classmethod
    def _clip(cls, v):
        return _check_clip(v)


@op("pata_ec", params=PataEcParams, returns="novelty", inline=True)
def pata_ec(p: PataEcParams, ctx=None) -> PataEcParams:
    """Novelty by PATA-EC (Enhanced POET): how an environment ranks the agents. A clip left out is
    the poet block's criterion (the driver fills it in)."""
    return p


# Each schedule of a poet block when it is left out. Its per-use settings (those not None) are the
# ones that use takes, and their defaults when an every(...) leaves them out.
SCHEDULES = {
    "mutate": EveryParams(n=150, children=8, admit=1, max_active=40),
    "transfer": EveryParams(n=25, fine_tune=True),
    "checkpoint": EveryParams(n=25),
}
_SCHEDULE_EXTRAS = {
    use: {k for k in EveryParams.model_fields if k != "n" and getattr(d, k) is not None} for use, d in SCHEDULES.items()
}


class PoetParams(Params):
    env: Input["env"] = Field(description="the initial environment and its mutable parameters")
    agent: Input["net"] = Field(
        None, description='the policy: mlp(...) (default mlp(hidden = [40, 40], activation = "tanh"))')
    es: Input["es"] = Field(None, description="ES settings (default es())")
    variant: Literal["original", "enhanced"] = Field("enhanced", description="POET 2019 or Enhanced POET 2020")
    iterations: int = Field(60000, ge=1, le=10_000_000, description="POET iterations (one ES step per pair each)")
    mutate: Input["schedule"] = Field(None, description="reproduction: every(150, children = 8, admit = 1, max_active = 40)")
    criterion: list[float] = Field([25.0, 340.0], description="minimal criterion [lo, hi] on a new env's score")
    repro_threshold: float = Field(200.0, description="score a pair needs to reproduce")
    solved: float = Field(230.0, description="score that solves an env (for the run's ANNECS)")
    transfer: Input["schedule"] = Field(None, description="transfers: every(25, fine_tune = true)")
    novelty: Input["novelty"] = Field(None, description="params(k = 5) or pata_ec(k = 5) (default by variant)")
    archive: bool = Field(True, description="keep removed pairs for novelty and deduplication")
    checkpoint: Input["schedule"] = Field(None, description="checkpoint into the store every(N) iterations (default 25)")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="default: the experiment seed")

    @field_validator("criterion")
    @classmethod
    def _criterion(cls, v):
        if len(v) != 2 or v[0] >= v[1]:
            raise ValueError(f"criterion must be [lo, hi] with lo < hi, got {v}")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v):
        if not (isinstance(v, dict) and v.get("$op") in ("gym", "bipedal", "point")):
            raise ValueError("expected an environment: gym(...), bipedal(...) or point(...)")
        return v

    @field_validator("mutate", "transfer", "checkpoint")
    @classmethod
    def _schedule(cls, v, info):
        if v is None:
            return v
        if not (isinstance(v, dict) and v.get("$op") == "every"):
            raise ValueError("expected every(N, ...)")
        allowed = _SCHEDULE_EXTRAS[info.field_name]
        bad = sorted(k for k, x in v.items() if k not in ("$op", "n") and x is not None and k not in allowed)
        if bad:
            takes = ", ".join(sorted(allowed)) or "only N"
            raise ValueError(f"every(...) for {info.field_name} does not take {', '.join(bad)} (it takes {takes})")
        return v

    @field_validator("agent", "es", "novelty")
    @classmethod
    def _inline_kind(cls, v, info):
        want = {"agent": ("mlp",), "es": ("es",), "novelty": ("params", "pata_ec")}[info.field_name]
        if v is not None and not (isinstance(v, dict) and v.get("$op") in want):
            raise ValueError(f"expected {' or '.join(w + '(...)' for w in want)}")
        return v


class PoetRun(Artifact):
    """A finished POET run: log.json (settings, per-iteration history, environments), agents.safetensors
    (active agents `env<ID>`, archived `archived.env<ID>`), annecs.png, scores.png, envs.png."""

    tag = "poet"
    annecs: int = 0
    iterations: int = 0
    transfers: int = 0
    solved: float = 0.0
    pairs: list[dict] = []
    archive: list[dict] = []
    plots: list[str] = []


POET = value_type("poet", "the result of a POET run (members .annecs, .pairs, .archive)",
                  members={"annecs": "number", "pairs": "list", "archive": "list"}, kinds={"poet"},
                  artifact=PoetRun, summary=lambda v: f"ANNECS {getattr(v, 'annecs', '?')}, "
                  f"{getattr(v, 'iterations', '?')} iterations, {getattr(v, 'transfers', '?')} transfers")


@op("poet", params=PoetParams, kinds={"poet"}, returns="poet", version=1)
def poet(p: PoetParams, ctx) -> PoetRun:
    """POET / Enhanced POET: co-evolve environments and ES-trained agents, with transfers."""
    from expc.runtime.poet.driver import run_poet

    result = run_poet(p, ctx)
    return PoetRun(path=Path(ctx.out_dir), **result)


class AnnecsParams(Params):
    run: Input["poet"] = Field(description="a poet run")
    solved: float = Field(230.0, description="score at which an environment counts as solved")


@op("annecs", params=AnnecsParams, kinds={"eval"}, returns="metric", version=1)
def annecs(p: AnnecsParams, ctx=None) -> dict:
    """ANNECS: accumulated number of novel environments created (passing the minimal criterion) and
    solved, at each iteration."""
    from expc.runtime.poet.annecs import annecs_curve

    path = getattr(p.run, "path", None) or (p.run.get("path") if isinstance(p.run, dict) else None)
    if path is None:
        raise OpError("expected a poet run", field="run")
    log_file = Path(path) / "log.json"
    try:
        history = json.loads(log_file.read_text())["history"]
    except (OSError, ValueError, KeyError) as e:
        raise OpError(f"{log_file}: not a POET log ({e})", field="run") from None
    curve = annecs_curve(history, p.solved)
    return {"value": curve[-1] if curve else 0, "per_iteration": curve, "solved": p.solved}
