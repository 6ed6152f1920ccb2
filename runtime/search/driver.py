"""The trial loop: ask Optuna for params, evaluate the objective under them, tell the result.

The study is stored in SQLite (Optuna RDB storage) in the node's work dir under the node's key, so a
killed or cancelled search resumes: finished trials are kept and only the remainder runs. Trials that
were running when the search stopped are marked failed and do not count. The sampler is reseeded
from (seed, number of finished trials) before each ask, so with parallel = 1 a resumed study proposes
exactly what an uninterrupted one would have.
"""

from __future__ import annotations

import math
import sqlite3
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from expc.runtime.api import OpError
from expc.runtime.search.backends import InProcess, Processes, RayTasks
from expc.runtime.search.space import distribution, grid_values, make_pruner, make_sampler
from expc.runtime.search.trial import Target, is_finite, targets_of

_COUNTED = "expc_counted"  # user attr of trials that count toward `trials` (finished, even with nan)


def searched_params(p, ctx, targets: list[Target]) -> list[str]:
    if p.over is not None:
        names = []
        for i, x in enumerate(p.over):
            decl = ctx.param_decl(x["$param"])
            if decl is None or decl.dist is None:
                raise OpError(f"'{x['$param']}' is not a searchable param: declare it with `param "
                              f"{x['$param']} ~ uniform(...)` (or loguniform, int, choice)", field=f"over.{i}")
            if x["$param"] not in names:
                names.append(x["$param"])
        return names
    used: set[str] = set()
    for t in targets:
        used |= set(ctx.params_of(t.node))
    fixed = set(getattr(ctx, "env", None) or {})  # params set on the command line stay fixed
    names = sorted(n for n in used - fixed if (d := ctx.param_decl(n)) is not None and d.dist is not None)
    if not names:
        raise OpError("the objective depends on no searched param: nothing to search",
                      field="objective", hint="declare one with `param w ~ uniform(0, 1)` and use it upstream")
    return names


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
    started = time.time()
    targets = targets_of(p.objective)
    names = searched_params(p, ctx, targets)
    dists = {n: distribution(n, ctx.param_decl(n).dist) for n in names}
    multi = len(targets) > 1
    trials = p.trials
    grid = None
    if p.sampler["$op"] == "grid":
        grid = {n: grid_values(n, ctx.param_decl(n).dist, int(p.sampler.get("points", 5))) for n in names}
        size = math.prod(len(v) for v in grid.values())
        if trials > size:
            ctx.warn(f"the grid has {size} points; running {size} trials, not {trials}", field="trials")
            trials = size
    remote = p.parallel > 1 or getattr(ctx, "backend", "local") == "ray"
    if p.pruner is not None:
        if multi:
            raise OpError("pruning needs a single objective", field="pruner", hint="use pruner = none")
        if remote:
            ctx.warn("trials in worker processes or Ray tasks are not pruned (only with parallel = 1)",
                     field="pruner")
    make_sampler(p.sampler, 0, grid, multi)  # reports a sampler that cannot run before any work
    study = _open_study(ctx, [t.direction for t in targets], make_pruner(p.pruner))
    done = _counted(study)
    advance = ctx.progress(trials, "search")
    if done:
        advance(done)

    backend = None
    asked: dict[int, optuna.trial.Trial] = {}
    try:
        hook = (lambda number: _pruning_hook(asked[number], p.pruner["metric"], number)) if p.pruner else None
        local = InProcess(ctx.evaluate, targets, hook)
        if remote and done < trials:
            # One trial here first: it computes the shared upstream work (the fine-tunes) once, before
            # several workers would each start on it.
            _ask_and_submit(study, p, grid, multi, dists, asked, local, done)
            done += _finish(study, ctx, targets, names, asked, *local.wait())
            advance(1)
        backend = _backend(p, ctx, targets, local)
        while done < trials:
            ctx.check_cancelled()
            while len(asked) < p.parallel and done + len(asked) < trials:
                _ask_and_submit(study, p, grid, multi, dists, asked, backend, done)
            done += _finish(study, ctx, targets, names, asked, *backend.wait())
            advance(1)
    finally:
        for t in asked.values():  # interrupted: in-flight trials do not count
            study.tell(t, state=TrialState.FAIL)
        if backend is not None:
            backend.close()
    return _result(study, ctx, targets, names, time.time() - started)


def _backend(p, ctx, targets, local):
    if p.parallel <= 1 and getattr(ctx, "backend", "local") != "ray":
        return local
    if getattr(ctx, "backend", "local") == "ray":
        return RayTasks(ctx.worker_spec(), targets, getattr(ctx, "address", None))
    return Processes(ctx.worker_spec(), targets, p.parallel)


def _ask_and_submit(study, p, grid, multi, dists, asked, backend, done) -> None:
    # Reseed from the count of trials finished or in flight: deterministic for parallel = 1.
    study.sampler = make_sampler(p.sampler, done + len(asked), grid, multi)
    trial = study.ask(dists)
    asked[trial.number] = trial
    backend.submit(trial.number, dict(trial.params))


def _pruning_hook(trial: optuna.trial.Trial, metric: str, number: int):
    """Report each value of `metric` that the trial's nodes log to Optuna; stop when it says prune."""
    from expc.runtime.api import Pruned

    def on_metric(node: str, name: str, value: float, step: int | None) -> None:
        if name != metric or step is None or not math.isfinite(value):
            return
        trial.report(value, step)
        if trial.should_prune():
            raise Pruned(f"trial {number} pruned at step {step} of {node} ({metric} = {value:.4g})")

    return on_metric


def _finish(study, ctx, targets, names, asked, number: int, result: dict) -> int:
    trial = asked.pop(number)
    if result.get("pruned"):
        trial.set_user_attr(_COUNTED, True)
        trial.set_user_attr("seconds", float(result.get("seconds", 0.0)))
        study.tell(trial, state=TrialState.PRUNED)
        ctx.log("pruned", 1.0, step=number)
        return 1
    if not result.get("ok"):
        study.tell(trial, state=TrialState.FAIL)
        _raise_remote(result.get("error") or {})
    values = result["values"]
    trial.set_user_attr(_COUNTED, True)
    trial.set_user_attr("seconds", float(result.get("seconds", 0.0)))
    if is_finite(values):
        study.tell(trial, values if len(values) > 1 else values[0])
    else:  # Optuna keeps non-finite objectives as failed trials; they still count
        ctx.warn(f"trial {number}: the objective is not finite ({values}); the trial is marked failed")
        study.tell(trial, state=TrialState.FAIL)
    for i, v in enumerate(values):
        ctx.log("objective" if len(values) == 1 else f"objective.{i}", v, step=number)
    for n in names:
        v = trial.params.get(n)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            ctx.log(f"param.{n}", float(v), step=number)
    return 1


def _raise_remote(error: dict) -> None:
    """A worker's diagnostic, shown as if the node had failed here (it did, in another process)."""
    from expc.interpreter.executor import NodeFailed
    from expc.spec.diagnostics import Diagnostic, Span

    s = error.get("span")
    span = Span(s["file"], s["line"], s["col"], s["end_line"], s["end_col"]) if s else None
    raise NodeFailed(Diagnostic(error.get("code", "E600"), error.get("message", "a search trial failed"), span,
                                hint=error.get("hint")))


def _trial_row(t: optuna.trial.FrozenTrial, multi: bool) -> dict:
    row: dict[str, Any] = {"number": t.number, "params": dict(t.params), "state": t.state.name.lower(),
                           "seconds": t.user_attrs.get("seconds")}
    if multi:
        row["values"] = list(t.values) if t.values is not None else None
    else:
        row["value"] = t.value if t.values is not None else None
    return row


def _result(study: optuna.Study, ctx, targets: list[Target], names: list[str], seconds: float) -> dict:
    multi = len(targets) > 1
    rows = [_trial_row(t, multi) for t in study.get_trials(deepcopy=False) if t.user_attrs.get(_COUNTED)]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        raise OpError("no trial finished with a finite objective", field="objective")
    out: dict[str, Any] = {
        "directions": [t.direction for t in targets],
        "objectives": [t.label for t in targets],
        "params": names,
        "trials": rows,
        "seconds": seconds,
        "study": "study.sqlite",
    }
    if multi:
        pareto = sorted(study.best_trials, key=lambda t: t.number)
        sign = 1 if targets[0].direction == "minimize" else -1
        best = min(pareto, key=lambda t: (sign * t.values[0], t.number))
        out["pareto"] = [{"number": t.number, "params": dict(t.params), "values": list(t.values)} for t in pareto]
        out["best"] = dict(best.params)
        out["best_value"] = best.values[0]
        out["best_values"] = list(best.values)
    else:
        best = study.best_trial
        out["best"] = dict(best.params)
        out["best_value"] = best.value
        out["pareto"] = []
    out["best_trial"] = best.number
    _copy_study(ctx)
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
