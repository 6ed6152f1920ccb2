"""The trial loop, in the shape of Optuna's ask/tell: ask a generation of up to `parallel` trials,
evaluate the objective under each with ctx.map (here, in worker processes or as Ray tasks: the
interpreter decides), then each measure the same way, tell the results, repeat.

Measures are kept as the trial's user attribute "measures" ({name: number}), so a resumed study has
them too. A sweep (no objective) still needs a study direction: Optuna is told a constant 0 for every
trial, so a sampler that models the history sees a flat landscape and no trial is better than another.

The study is stored in SQLite (Optuna RDB storage) in the node's work dir under the node's key, so a
killed or cancelled search resumes: finished trials are kept and only the remainder runs. Trials that
were running when the search stopped are marked failed and do not count. The sampler is reseeded
from (seed, number of finished trials) before each ask, so with parallel = 1 a resumed study proposes
exactly what an uninterrupted one would have.

An architecture param (a Genome: `param arch ~ mlps(...)`) is searched by proxy: Optuna draws an
integer seed and the trial's binding is the genome `sample(random.Random(seed))`; the genome itself is
kept as the trial's user attribute "bindings" (what the result shows and `NAME.best` holds).

With `strategy =` the loop is a strategy's (expc.runtime.search.generations), on the same study,
evaluation and result code.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from expc.runtime.api import MapResult, OpError, Pruned
from expc.runtime.capabilities import Genome
from expc.runtime.search.trial import (Measure, Target, behaviour_value, is_finite, measure_value, measures_of,
                                       objective_value, targets_of)

_COUNTED = "expc_counted"  # user attr of trials that count toward `trials` (finished, even with nan)
_MEASURES = "measures"  # user attr: the trial's measures, {name: number}
_BINDINGS = "bindings"  # user attr: the trial's bindings as JSON, when they are not its Optuna params
_SWEEP = 0.0  # what Optuna is told for every trial of a search without an objective


def searched_params(p, ctx, targets: list[Target]) -> list[str]:
    if p.over is not None:
        names = []
        for i, x in enumerate(p.over):
            if ctx.distribution(x["$param"]) is None:
                raise OpError(f"'{x['$param']}' is not a searchable param: declare it with `param "
                              f"{x['$param']} ~ uniform(...)` (or loguniform, int, choice)", field=f"over.{i}")
            if x["$param"] not in names:
                names.append(x["$param"])
        return names
    used: set[str] = set()
    for t in targets:
        used |= set(ctx.params_of(t.node))
    fixed = set(ctx.bindings)  # params set on the command line stay fixed
    names = sorted(n for n in used - fixed if ctx.distribution(n) is not None)
    if not names:
        raise OpError("the objective depends on no searched param: nothing to search",
                      field="objective", hint="declare one with `param w ~ uniform(0, 1)` and use it upstream")
    return names


def bindings_of(params: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """A trial's bindings from its Optuna params: a genome param's value is the seed of its genome."""
    return {n: space[n].sample(random.Random(int(v))) if isinstance(space.get(n), Genome) else v
            for n, v in params.items()}


def trial_bindings(t) -> dict[str, Any]:
    """The bindings a stored trial was evaluated under."""
    stored = t.user_attrs.get(_BINDINGS)
    return json.loads(stored) if stored is not None else dict(t.params)


def _open_study(ctx, directions: list[str], pruner) -> optuna.Study:
    url = f"sqlite:///{ctx.work_dir / 'study.sqlite'}"
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    study = optuna.create_study(storage=storage, study_name=ctx.key, directions=directions, pruner=pruner,
                                load_if_exists=True)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)  # running when the last attempt stopped
    return study


def _counted(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get(_COUNTED))


def run_search(p, ctx) -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if p.strategy is not None:
        from expc.runtime.search.generations import run_strategy

        return run_strategy(p, ctx)
    started = time.time()
    targets = targets_of(p.objective)
    measures = measures_of(p.measure)
    names = searched_params(p, ctx, targets)
    space = {n: ctx.distribution(n) for n in names}
    dists = {n: d.optuna() for n, d in space.items()}
    multi = len(targets) > 1
    trials = p.trials
    grid = None
    points = p.sampler.grid_points()
    if points is not None:
        try:
            grid = {n: d.grid(points) for n, d in space.items()}
        except ValueError as e:  # an architecture param has no grid
            raise OpError(str(e), field="sampler") from None
        size = math.prod(len(v) for v in grid.values())
        if trials > size:
            ctx.warn(f"the grid has {size} points; running {size} trials, not {trials}", field="trials")
            trials = size
    remote = p.parallel > 1 or ctx.backend == "ray"
    if p.pruner is not None:
        if multi:
            raise OpError("pruning needs a single objective", field="pruner", hint="use pruner = none")
        if remote:
            ctx.warn("trials in worker processes or Ray tasks are not pruned (only with parallel = 1)",
                     field="pruner")
    genomes = any(isinstance(d, Genome) for d in space.values())
    p.sampler.make(0, grid, multi)  # reports a sampler that cannot run before any work
    pruner = p.pruner.make() if p.pruner is not None else optuna.pruners.NopPruner()
    study = _open_study(ctx, [t.direction for t in targets] or ["minimize"], pruner)
    done = _counted(study)
    advance = ctx.progress(trials, "search", unit="trial")
    if done:
        advance(done)

    metric = p.pruner.metric if p.pruner is not None and not remote else None
    asked: list[optuna.trial.Trial] = []
    try:
        # With workers, one trial here first: it computes the shared upstream work (the fine-tunes)
        # once, before several workers would each start on it.
        first = remote
        while done < trials:  # ask a generation, map it, tell the results
            ctx.check_cancelled()
            for _ in range(1 if first else min(p.parallel, trials - done)):
                # Reseed from the count of trials finished or asked: deterministic for parallel = 1.
                study.sampler = p.sampler.make(done + len(asked), grid, multi)
                trial = study.ask(dists)
                if genomes:
                    trial.set_user_attr(_BINDINGS, json.dumps(bindings_of(trial.params, space), sort_keys=True))
                asked.append(trial)
            bindings = [trial_bindings(t) for t in asked]
            hooks = [_pruning_hook(t, metric, t.number) for t in asked] if metric else None
            outcomes = evaluate(ctx, targets, measures, bindings, p.parallel, first, hooks)
            told = _tell(study, ctx, names, asked, outcomes, sweep=not targets)
            done += told
            advance(told)
            first = False
    finally:
        for t in asked:  # interrupted: in-flight trials do not count
            study.tell(t, state=TrialState.FAIL)
    return _result(study, ctx, targets, measures, names, dists, time.time() - started)


def evaluate(ctx, targets: list[Target], measures: list[Measure], bindings: list[dict], parallel: int,
             in_process: bool, hooks: list | None = None, raw: set[str] = frozenset()
             ) -> list[tuple[MapResult | None, list[float], dict, float]]:
    """Each binding's (failure or None, objective values, measures, seconds): one ctx.map per
    objective, then one per measure, each only over the bindings the earlier ones did not fail (they
    find the shared work stored). `hooks[i]` sees the metrics binding i's objective logs (pruning);
    a measure named in `raw` is kept as the node gave it (a novelty behaviour vector)."""
    failed: dict[int, MapResult] = {}
    values: list[list[float]] = [[] for _ in bindings]
    measured: list[dict[str, Any]] = [{} for _ in bindings]
    seconds = [0.0] * len(bindings)
    for target in [*targets, *measures]:
        todo = [i for i in range(len(bindings)) if i not in failed]
        objective = isinstance(target, Target)
        on_metric = (lambda j, *a, todo=todo: hooks[todo[j]](*a)) if hooks and objective else None
        results = ctx.map(target.node, [bindings[i] for i in todo], parallel=parallel, on_metric=on_metric,
                          in_process=in_process)
        for i, r in zip(todo, results):
            seconds[i] += r.seconds
            if not r.ok:
                failed[i] = r
            elif objective:
                values[i].append(objective_value(r.value, target))
            elif target.name in raw:
                measured[i][target.name] = behaviour_value(r.value, target)
            else:
                measured[i][target.name] = measure_value(r.value, target)
    return [(failed.get(i), values[i], measured[i], seconds[i]) for i in range(len(bindings))]


def _pruning_hook(trial: optuna.trial.Trial, metric: str, number: int):
    """Report each value of `metric` that the trial's nodes log to Optuna; stop when it says prune."""

    def on_metric(node: str, name: str, value: float, step: int | None) -> None:
        if name != metric or step is None or not math.isfinite(value):
            return
        trial.report(value, step)
        if trial.should_prune():
            raise Pruned(f"trial {number} pruned at step {step} of {node} ({metric} = {value:.4g})")

    return on_metric


def _tell(study, ctx, names, asked: list, outcomes, sweep: bool) -> int:
    """Tell Optuna how each trial of a generation went; returns how many count toward `trials`. A
    trial that failed fails the search, with its node's diagnostic, once the others are told."""
    counted = 0
    failure: MapResult | None = None
    for trial, (failed, values, measured, seconds) in zip(asked, outcomes):
        number = trial.number
        if failed is not None and failed.pruned:
            trial.set_user_attr(_COUNTED, True)
            trial.set_user_attr("seconds", seconds)
            study.tell(trial, state=TrialState.PRUNED)
            ctx.log("pruned", 1.0, step=number)
            counted += 1
            continue
        if failed is not None:
            study.tell(trial, state=TrialState.FAIL)
            failure = failure or failed
            continue
        trial.set_user_attr(_COUNTED, True)
        trial.set_user_attr("seconds", seconds)
        if measured:
            trial.set_user_attr(_MEASURES, measured)
        if sweep:
            study.tell(trial, _SWEEP)
        elif is_finite(values):
            study.tell(trial, values if len(values) > 1 else values[0])
        else:  # Optuna keeps non-finite objectives as failed trials; they still count
            ctx.warn(f"trial {number}: the objective is not finite ({values}); the trial is marked failed")
            study.tell(trial, state=TrialState.FAIL)
        for i, v in enumerate(values):
            ctx.log("objective" if len(values) == 1 else f"objective.{i}", v, step=number)
        for name, v in measured.items():
            ctx.log(f"measure.{name}", v, step=number)
        for n in names:
            v = trial_bindings(trial).get(n)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                ctx.log(f"param.{n}", float(v), step=number)
        counted += 1
    asked.clear()
    if failure is not None:
        failure.get()  # raises the node's failure, as if the search had evaluated it here
    return counted


def _trial_row(t: optuna.trial.FrozenTrial, multi: bool, sweep: bool, measures: list[Measure]) -> dict:
    row: dict[str, Any] = {"number": t.number, "params": trial_bindings(t), "state": t.state.name.lower(),
                           "seconds": t.user_attrs.get("seconds")}
    if multi:
        row["values"] = list(t.values) if t.values is not None else None
    elif not sweep:
        row["value"] = t.value if t.values is not None else None
    if measures:
        recorded = t.user_attrs.get(_MEASURES) or {}
        row["measures"] = {m.name: recorded.get(m.name) for m in measures}
    predicted = t.system_attrs.get("expc_predicted")  # the predictor pruner's forecast (runtime/search/predictor.py)
    if isinstance(predicted, (int, float)):
        row["predicted"] = float(predicted)
    if t.user_attrs.get("error"):
        row["error"] = t.user_attrs["error"]
    return row


def _result(study: optuna.Study, ctx, targets: list[Target], measures: list[Measure], names: list[str],
            dists: dict[str, Any], seconds: float) -> dict:
    multi = len(targets) > 1
    sweep = not targets
    rows = [_trial_row(t, multi, sweep, measures) for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get(_COUNTED)]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        raise OpError("no trial finished with a finite objective" if not sweep else "no trial finished",
                      field="objective" if not sweep else "measure")
    out: dict[str, Any] = {
        "directions": [t.direction for t in targets],
        "objectives": [t.label for t in targets],
        "measures": [m.name for m in measures],
        "params": names,
        "log": [n for n, d in dists.items() if getattr(d, "log", False)],  # params drawn on a log scale
        "trials": rows,
        "seconds": seconds,
        "study": "study.sqlite",
    }
    if sweep:  # nothing is optimized: no best (node(NAME.best) is an error)
        out.update(best=None, best_value=None, best_trial=None, pareto=[])
        _copy_study(ctx)
        return out
    if multi:
        pareto = sorted(study.best_trials, key=lambda t: t.number)
        sign = 1 if targets[0].direction == "minimize" else -1
        best = min(pareto, key=lambda t: (sign * t.values[0], t.number))
        out["pareto"] = [{"number": t.number, "params": trial_bindings(t), "values": list(t.values)} for t in pareto]
        out["best"] = trial_bindings(best)
        out["best_value"] = best.values[0]
        out["best_values"] = list(best.values)
    else:
        best = study.best_trial
        out["best"] = trial_bindings(best)
        out["best_value"] = best.value
        out["pareto"] = []
    out["best_trial"] = best.number
    out["described"] = describe_genomes(out["best"], ctx)
    _copy_study(ctx)
    return out


def describe_genomes(bindings: dict[str, Any] | None, ctx) -> dict[str, list[str]]:
    """Genome.describe of each architecture param of `bindings` ({param: lines}; what `expc show` prints)."""
    out = {}
    for n, v in (bindings or {}).items():
        d = ctx.distribution(n)
        if isinstance(d, Genome):
            out[n] = d.describe(v)
    return out


def _copy_study(ctx) -> None:
    """The work dir goes when the node is committed; keep the study with the result."""
    src = sqlite3.connect(str(ctx.work_dir / "study.sqlite"))
    dst = sqlite3.connect(str(ctx.out_dir / "study.sqlite"))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
