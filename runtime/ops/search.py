"""Search (kind `search`) on Optuna: objectives, samplers, a pruner, and the `search` operator.

    param w1 ~ uniform(0, 1, default = 0.3)
    search sweep { objective = minimize(ppl_dem), sampler = tpe(0), trials = 20 }
    eval best = ppl_dem(sweep.best)

The objective is evaluated once per trial with `ctx.evaluate(target, {param: value})`, so only the nodes
that depend on the searched params run again; everything upstream (the fine-tunes) comes from the
store. `measure = {asr: asr_t, acc: acc}` records more evaluations at every trial; without an objective
the search is a sweep (it needs `measure` and `over`): every trial is recorded, and there is no best.
The study lives in Optuna's RDB storage (SQLite) in the node's work dir, so an interrupted search
resumes where it stopped. The heavy code is in expc.runtime.search (imported only when a search
runs).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from expc.runtime.registry import Deferred, Evaluates, Input, Labelled, Params, op
from expc.runtime.types import Shown, value_type


def _search_summary(v) -> str | None:
    """`8 trials (2 pruned), best ppl = 12.3 at w1=0.41, w2=0.2`; two objectives: the best by the
    first, and the size of the Pareto set."""
    if not isinstance(v, dict) or not isinstance(v.get("trials"), list):
        return None
    trials = v["trials"]
    states: dict[str, int] = {}
    for t in trials:
        state = t.get("state", "?") if isinstance(t, dict) else "?"
        states[state] = states.get(state, 0) + 1
    others = ", ".join(f"{n} {s}" for s, n in states.items() if s != "complete")
    head = f"{len(trials)} trial{'s' if len(trials) != 1 else ''}" + (f" ({others})" if others else "")
    if v.get("generations"):
        head += f" in {len(v['generations'])} generations"
    measures = v.get("measures") or []
    if measures:
        head += f" measuring {', '.join(measures)}"
    if v.get("best_value") is None:
        return head
    objectives = v.get("objectives") or ["value"]
    described = v.get("described") or {}
    best = ", ".join(f"{k}={' '.join(described[k]) if k in described else _num(x, 4)}"
                     for k, x in (v.get("best") or {}).items())
    line = f"{head}, best {objectives[0]} = {_num(v['best_value'], 6)} at {best or 'no params'}"
    if len(objectives) > 1:
        line += f"; {len(v.get('pareto') or [])} on the Pareto front"
    return line


def _num(x, digits: int) -> str:
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _search_shown(v) -> Shown | None:
    """A strategy search's generations as a table, and the best architecture as Genome.describe shows it."""
    if not isinstance(v, dict) or not (v.get("generations") or v.get("described")):
        return None
    lines = []
    for name, text in (v.get("described") or {}).items():
        lines += [f"best {name}:"] + [f"  {line}" for line in text]
    rows = tuple((g["generation"], _cell(g.get("best")), _cell(g.get("mean")), _cell(g.get("diversity")),
                  g.get("candidates"), len(g.get("species") or [])) for g in v.get("generations") or [])
    headers = ("generation", "best", "mean", "diversity", "candidates", "species") if rows else ()
    return Shown(title="search generations", headers=headers, rows=rows, lines=tuple(lines))


def _cell(x) -> str:
    return "-" if x is None else _num(float(x), 4)


SEARCH = value_type("search", "the result of a search (members .best, .best_value, .trials, .pareto; a strategy "
                    "search also .generations)",
                    members={"best": "record", "best_value": "number", "trials": "list", "pareto": "list",
                             "generations": "list"},
                    kinds={"search"}, summary=_search_summary, show=_search_shown)
OBJECTIVE = value_type("objective", "a search objective (minimize / maximize)", node=False)
SAMPLER = value_type("sampler", "an Optuna sampler", node=False)
PRUNER = value_type("pruner", "an Optuna pruner", node=False)
STRATEGY = value_type("strategy", "a search strategy asked and told a generation at a time (evolution(...), "
                      "codeepneat(...)): an alternative to a sampler", node=False)

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


def derived_seed(seed: int, i: int) -> int:
    """The sampler seed of the i-th finished trial. Reseeding per trial (rather than one RNG for the
    whole study) makes a resumed study draw exactly what an uninterrupted one would have drawn."""
    return (int(seed) * 1_000_003 + i * 7919 + 17) % (2**31 - 1)


class SamplerParams(Params):
    """A sampler's configuration; the search receives it (validated) and asks it for an Optuna
    sampler before each trial. Optuna is imported only then."""

    seed: int = Field(0, description="sampler seed: a search with parallel = 1 is deterministic given it")

    def grid_points(self) -> int | None:
        """Points per float param when the sampler enumerates a grid; None for a sampler that draws."""
        return None

    def make(self, i: int, grid: dict[str, list[Any]] | None, multi: bool) -> Any:
        """The Optuna sampler for the i-th trial (several objectives when `multi`)."""
        raise NotImplementedError


class TpeParams(SamplerParams):
    startup: int = Field(10, ge=0, le=100_000, description="random trials before TPE models the history")

    def make(self, i, grid, multi):
        import optuna

        return optuna.samplers.TPESampler(seed=derived_seed(self.seed, i), n_startup_trials=int(self.startup))


@op("tpe", params=TpeParams, returns="sampler", inline=True)
def tpe(p: TpeParams, ctx=None) -> None:
    """Tree-structured Parzen estimator (Optuna's default), after `startup` random trials."""


class RandomParams(SamplerParams):
    def make(self, i, grid, multi):
        import optuna

        return optuna.samplers.RandomSampler(seed=derived_seed(self.seed, i))


@op("random", params=RandomParams, returns="sampler", inline=True)
def random(p: RandomParams, ctx=None) -> None:
    """Independent uniform sampling of every searched param."""


class GridParams(SamplerParams):
    points: int = Field(5, ge=2, le=10_000, description="grid points of each float param (ends included; "
                        "log-spaced for loguniform)")

    def grid_points(self) -> int:
        return int(self.points)

    def make(self, i, grid, multi):
        from expc.runtime.search.space import GridSampler

        # Not the per-trial seed: the grid's order is shuffled with it, and must be the same every trial.
        return GridSampler(grid or {}, seed=int(self.seed))


@op("grid", params=GridParams, returns="sampler", inline=True)
def grid(p: GridParams, ctx=None) -> None:
    """Every combination of the params' values: choice options, int ranges, and `points` evenly spaced
    floats for uniform / loguniform. Trials beyond the grid's size are not run (with a warning)."""


class CmaesParams(SamplerParams):
    def make(self, i, grid, multi):
        import optuna

        from expc.runtime.api import OpError

        if multi:
            raise OpError("cmaes() optimizes a single objective", field="sampler", hint="use tpe() or random()")
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise OpError("cmaes() needs the `cmaes` package, which is not installed", field="sampler",
                          hint="pip install cmaes, or use tpe()") from None
        return optuna.samplers.CmaEsSampler(seed=derived_seed(self.seed, i), warn_independent_sampling=False)


@op("cmaes", params=CmaesParams, returns="sampler", inline=True)
def cmaes(p: CmaesParams, ctx=None) -> None:
    """CMA-ES over the numeric params (needs the `cmaes` package; choice params are sampled at random)."""


# ---------------------------------------------------------------------------------------------- pruner


class MedianParams(Params):
    startup: int = Field(5, ge=0, description="trials finished before any pruning")
    warmup: int = Field(0, ge=0, description="steps of a trial before it may be pruned")
    metric: str = Field("loss", min_length=1, description="the logged metric reported as the intermediate value")

    def make(self) -> Any:
        import optuna

        return optuna.pruners.MedianPruner(n_startup_trials=int(self.startup), n_warmup_steps=int(self.warmup))


@op("median", params=MedianParams, returns="pruner", inline=True)
def median(p: MedianParams, ctx=None) -> None:
    """Median pruning: stop a trial whose intermediate value is worse than the median of earlier trials
    at the same step. The intermediate values are the `metric` that nodes computed for the trial log
    with a step (finetune logs `loss` every 10 steps), so a trial whose training goes badly stops
    there. Only trials run in the search's process (parallel = 1) are pruned."""


# ---------------------------------------------------------------------------------------------- search


class SearchParams(Params):
    objective: Annotated[Any, Deferred()] = Field(
        None, description="minimize(EVAL), maximize(EVAL), or a list of them (multi-objective: the Pareto set); "
        "none: a sweep that records `measure` at every point of `over`"
    )
    measure: Annotated[dict | None, Deferred(), Labelled()] = Field(
        None, description="evaluations recorded at every trial, {name: EVAL}, or a list [a, b] named after "
        "its items; each trial's `measures` holds their numbers"
    )
    # `strategy` comes before the fields it excludes: their validators (which run only on given
    # values) read it
    strategy: Input["strategy"] = Field(None, description="instead of a sampler: a strategy asked and told a "
                                        "generation at a time, evolution(...) or codeepneat(...)")
    sampler: Input["sampler"] = Field({"$op": "tpe", "seed": 0, "startup": 10},
                                      description="tpe(seed), random(seed), grid(), cmaes(seed)")
    trials: int = Field(20, ge=1, le=1_000_000, description="number of trials (a resumed search runs the rest)")
    generations: int | None = Field(None, ge=1, le=100_000, description="with a strategy: the number of "
                                    "generations (the budget; default 10)")
    keep: Literal["best", "all"] = Field("best", description='with a strategy: "best" keeps only the best '
                                         "candidate's results (trained networks) in the store, \"all\" every "
                                         "candidate's; their metrics and genomes are always in the result")
    parallel: int = Field(1, ge=1, le=1024, description="trials at once: local worker processes, or Ray tasks "
                          'with backend = "ray"')
    pruner: Input["pruner"] = Field(None, description="median() or none")
    over: Annotated[list[Any] | None, Deferred()] = Field(
        None, description="the params to search (default: every `~` param the objective depends on; a sweep "
        "without an objective must name them)"
    )

    @field_validator("objective")
    @classmethod
    def _objective(cls, v):
        if v is None:
            return v
        items = v if isinstance(v, list) else [v]
        if not items:
            raise ValueError("expected minimize(EVAL), maximize(EVAL) or a list of them, got an empty list")
        for x in items:
            if not (isinstance(x, dict) and x.get("$op") in ("minimize", "maximize")):
                raise ValueError("expected minimize(EVAL), maximize(EVAL) or a list of them")
        return v

    @field_validator("measure")
    @classmethod
    def _measure(cls, v):
        if v is None:
            return v
        if not v:
            raise ValueError("expected evaluations to record: measure = {name: EVAL, ...}")
        for name, x in v.items():
            if not (isinstance(x, dict) and "$ref" in x):
                raise ValueError(f"measure '{name}' must be an evaluation (a node such as a metric), got {x!r}")
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

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v, info):
        if info.data.get("strategy") is not None:
            raise ValueError("give sampler = ... or strategy = ..., not both (a strategy proposes the candidates "
                             "itself)")
        return v

    @field_validator("trials")
    @classmethod
    def _trials(cls, v, info):
        if info.data.get("strategy") is not None:
            raise ValueError("a strategy's budget is generations = N (each evaluates a population), not trials")
        return v

    @field_validator("generations", "keep")
    @classmethod
    def _strategy_only(cls, v, info):
        if info.data.get("strategy") is None:
            raise ValueError(f"{info.field_name} is a setting of a strategy search: add strategy = evolution(...) "
                             "or remove it")
        return v

    @model_validator(mode="after")
    def _one_objective(self):
        if self.strategy is not None and (self.objective is None or isinstance(self.objective, list)
                                          and len(self.objective) != 1):
            raise ValueError("a strategy optimizes one objective: objective = maximize(EVAL) or minimize(EVAL)")
        return self

    @model_validator(mode="after")
    def _sweep(self):
        if self.objective is None and self.measure is None:
            raise ValueError("a search needs objective = minimize(EVAL) (or maximize), or measure = {name: EVAL} "
                             "with over = [params] for a sweep")
        if self.objective is None and self.over is None:
            raise ValueError("a search without an objective (a sweep of its measures) must name its params: "
                             "over = [p1, p2]")
        return self


@op("search", params=SearchParams, kinds={"search"}, returns="search", version=1,
    evaluates=Evaluates(over="over"))
def search(p: SearchParams, ctx) -> dict:
    """Search params with Optuna: each trial evaluates the objective with that trial's params, rerunning
    only what depends on them. The result has `best` (a record of params: `node(NAME.best)` rebuilds a
    node with them), `best_value`, `trials`, and for several objectives `pareto`. Every trial also
    records each `measure` (`trials[i].measures`); without an objective the search is a sweep over
    `over`: its trials are all it has (no best). The study is kept in SQLite in the node's work dir (a
    killed search resumes) and copied into the result as study.sqlite.

    With `strategy = evolution(...)` instead of a sampler, the search runs `generations` of candidates
    asked of the strategy (architecture params such as `mlps(...)` and numbers alike); each trial has
    its `generation`, the result also `generations` (per generation: best, mean, diversity, species),
    and `keep = "best"` keeps only the best candidate's results in the store.

    search(objective = minimize(EVAL), trials = 20): optimize; search(objective = maximize(EVAL),
    measure = {name: EVAL}): optimize, and record more at every trial; search(measure = [EVAL, ...],
    sampler = grid(), over = [p]): a sweep; search(objective = maximize(EVAL), strategy =
    evolution(population = 20), generations = 10): evolve."""
    from expc.runtime.search.driver import run_search

    return run_search(p, ctx)


# ------------------------------------------------------------------------------- summaries of a search


class TrialStatParams(Params):
    search: Input["search"] = Field(description="a search (with a sampler or a strategy)")
    measure: str | None = Field(None, min_length=1, description="a measure's name (default: the objective, the "
                                "first of several)")
    generation: int | None = Field(None, description="only this generation's candidates (a strategy search; -1: "
                                   "the last)")


def _trial_numbers(p: TrialStatParams) -> list[float]:
    from expc.runtime.api import OpError

    result = p.search
    if not isinstance(result, dict) or not isinstance(result.get("trials"), list):
        raise OpError("expected the result of a search", field="search")
    trials = [t for t in result["trials"] if t.get("state") == "complete"]
    if p.generation is not None:
        gens = sorted({t.get("generation") for t in result["trials"] if t.get("generation") is not None})
        if not gens:
            raise OpError("the search has no generations (it used a sampler, not a strategy)", field="generation")
        g = gens[-1] if p.generation == -1 else p.generation
        if g not in gens:
            raise OpError(f"the search has generations {gens[0]}..{gens[-1]}, not {p.generation}", field="generation")
        trials = [t for t in trials if t.get("generation") == g]
    if p.measure is not None:
        if p.measure not in (result.get("measures") or []):
            raise OpError(f"the search has no measure '{p.measure}'", field="measure",
                          hint=f"its measures: {', '.join(result.get('measures') or []) or 'none'}")
        xs = [(t.get("measures") or {}).get(p.measure) for t in trials]
    elif not result.get("directions"):
        raise OpError("a sweep has no objective: name one of its measures", field="measure")
    else:
        xs = [t["value"] if "value" in t else (t.get("values") or [None])[0] for t in trials]
    xs = [float(x) for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if not xs:
        raise OpError("no finished candidate has that number", field="measure" if p.measure else "search")
    return xs


@op("mean", params=TrialStatParams, kinds={"eval"}, returns="metric", version=1)
def mean(p: TrialStatParams, ctx=None) -> dict:
    """The mean objective (or `measure`) over a search's finished trials or candidates (copies of an
    earlier candidate included: each is a member of its generation); `n` counts them."""
    xs = _trial_numbers(p)
    return {"value": sum(xs) / len(xs), "n": len(xs)}


@op("sd", params=TrialStatParams, kinds={"eval"}, returns="metric", version=1)
def sd(p: TrialStatParams, ctx=None) -> dict:
    """The sample standard deviation (n - 1) of the objective (or `measure`) over a search's finished
    trials or candidates; 0 for one; `n` counts them, `mean` is their mean."""
    import statistics

    xs = _trial_numbers(p)
    return {"value": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs), "mean": sum(xs) / len(xs)}
