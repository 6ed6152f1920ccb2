"""Search (kind `search`) on Optuna: objectives, samplers, a pruner, and the `search` operator.

    param w1 ~ uniform(0, 1, default = 0.3)
    search sweep { objective = minimize(ppl_dem), sampler = tpe(0), trials = 20 }
    eval best = ppl_dem(sweep.best)

The objective is evaluated once per trial with `ctx.evaluate(target, {param: value})`, so only the nodes
that depend on the searched params run again; everything upstream (the fine-tunes) comes from the
store. The study lives in Optuna's RDB storage (SQLite) in the node's work dir, so an interrupted
search resumes where it stopped. The heavy code is in expc.runtime.search (imported only when a search
runs).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from expc.runtime.registry import Deferred, Input, Params, op

# ------------------------------------------------------------------------------------------ objectives


class ObjectiveParams(Params):
    target: Input["metric", "number", "record", "any"] = Field(
        description="the evaluation to optimize: a metric (its .value), a number, or a member of a result"
    )


@op("minimize", params=ObjectiveParams, returns="objective", inline=True)
def minimize(p: ObjectiveParams, ctx=None) -> None:
    """A search objective: make the evaluation as small as possible."""


@op("maximize", params=ObjectiveParams, returns="objective", inline=True)
def maximize(p: ObjectiveParams, ctx=None) -> None:
    """A search objective: make the evaluation as large as possible."""


# -------------------------------------------------------------------------------------------- samplers


class SeededParams(Params):
    seed: int = Field(0, description="sampler seed: a search with parallel = 1 is deterministic given it")


class TpeParams(SeededParams):
    startup: int = Field(10, ge=0, le=100_000, description="random trials before TPE models the history")


@op("tpe", params=TpeParams, returns="sampler", inline=True)
def tpe(p: TpeParams, ctx=None) -> None:
    """Tree-structured Parzen estimator (Optuna's default), after `startup` random trials."""


@op("random", params=SeededParams, returns="sampler", inline=True)
def random(p: SeededParams, ctx=None) -> None:
    """Independent uniform sampling of every searched param."""


class GridParams(SeededParams):
    points: int = Field(5, ge=2, le=10_000, description="grid points of each float param (ends included; "
                        "log-spaced for loguniform)")


@op("grid", params=GridParams, returns="sampler", inline=True)
def grid(p: GridParams, ctx=None) -> None:
    """Every combination of the params' values: choice options, int ranges, and `points` evenly spaced
    floats for uniform / loguniform. Trials beyond the grid's size are not run (with a warning)."""


@op("cmaes", params=SeededParams, returns="sampler", inline=True)
def cmaes(p: SeededParams, ctx=None) -> None:
    """CMA-ES over the numeric params (needs the `cmaes` package; choice params are sampled at random)."""


# ---------------------------------------------------------------------------------------------- pruner


class MedianParams(Params):
    startup: int = Field(5, ge=0, description="trials finished before any pruning")
    warmup: int = Field(0, ge=0, description="steps of a trial before it may be pruned")
    metric: str = Field("loss", min_length=1, description="the logged metric reported as the intermediate value")


@op("median", params=MedianParams, returns="pruner", inline=True)
def median(p: MedianParams, ctx=None) -> None:
    """Median pruning: stop a trial whose intermediate value is worse than the median of earlier trials
    at the same step. The intermediate values are the `metric` that nodes computed for the trial log
    with a step (finetune logs `loss` every 10 steps), so a trial whose training goes badly stops
    there. Only trials run in the search's process (parallel = 1) are pruned."""


# ---------------------------------------------------------------------------------------------- search

SAMPLERS = ("tpe", "random", "grid", "cmaes")


class SearchParams(Params):
    objective: Annotated[Any, Deferred()] = Field(
        description="minimize(EVAL), maximize(EVAL), or a list of them (multi-objective: the Pareto set)"
    )
    sampler: Any = Field({"$op": "tpe", "seed": 0, "startup": 10}, description="tpe(seed), random(seed), "
                          "grid(), cmaes(seed)")
    trials: int = Field(20, ge=1, le=1_000_000, description="number of trials (a resumed search runs the rest)")
    parallel: int = Field(1, ge=1, le=1024, description="trials at once: local worker processes, or Ray tasks "
                          'with backend = "ray"')
    pruner: Any = Field(None, description="median() or none")
    over: Annotated[list[Any] | None, Deferred()] = Field(
        None, description="the params to search (default: every `~` param the objective depends on)"
    )

    @field_validator("objective")
    @classmethod
    def _objective(cls, v):
        items = v if isinstance(v, list) else [v]
        if not items:
            raise ValueError("expected minimize(EVAL), maximize(EVAL) or a list of them, got an empty list")
        for x in items:
            if not (isinstance(x, dict) and x.get("$op") in ("minimize", "maximize")):
                raise ValueError("expected minimize(EVAL), maximize(EVAL) or a list of them")
        return v

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v):
        if not (isinstance(v, dict) and v.get("$op") in SAMPLERS):
            raise ValueError("expected a sampler: " + ", ".join(f"{s}(...)" for s in SAMPLERS))
        return v

    @field_validator("pruner")
    @classmethod
    def _pruner(cls, v):
        if v is not None and not (isinstance(v, dict) and v.get("$op") == "median"):
            raise ValueError("expected median(...) or none")
        return v

    @field_validator("over")
    @classmethod
    def _over(cls, v):
        if v is None:
            return v
        if not v:
            raise ValueError("expected a non-empty list of params")
        for x in v:
            if not (isinstance(x, dict) and "$param" in x):
                raise ValueError("expected a list of params: over = [w1, w2]")
        return v


@op("search", params=SearchParams, kinds={"search"}, returns="search", version=1)
def search(p: SearchParams, ctx) -> dict:
    """Search params with Optuna: each trial evaluates the objective with that trial's params, rerunning
    only what depends on them. The result has `best` (a record of params: `node(NAME.best)` rebuilds a
    node with them), `best_value`, `trials`, and for several objectives `pareto`. The study is kept in
    SQLite in the node's work dir (a killed search resumes) and copied into the result as study.sqlite."""
    from expc.runtime.search.driver import run_search

    return run_search(p, ctx)
