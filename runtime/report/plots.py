"""Report plots (matplotlib, Agg backend): search history, objective and measures against params,
metric curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from expc.runtime.api import OpError  # noqa: E402


def render(spec: dict, ctx, i: int) -> Path:
    kind = spec["$op"]
    fig = {"history": _history, "response": _response, "curves": _curves, "matrix": _matrix, "species": _generations,
           "diversity": _generations}[kind](spec, ctx, f"plot.{i}")
    path = Path(ctx.out_dir) / f"{i:02d}_{kind}_{_subject(spec)}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _subject(spec: dict) -> str:
    if "search" in spec:
        return spec["search"]["$ref"]
    if "run" in spec:
        return spec["run"]["$ref"]
    return "_".join(n["$ref"] for n in spec.get("nodes", []))[:60]


def _search(spec: dict, ctx) -> tuple[str, dict]:
    name = spec["search"]["$ref"]
    return name, ctx.evaluate(name, {})


def _finished(result: dict) -> list[dict]:
    return [t for t in result.get("trials", []) if t.get("state") == "complete"]


def _series(result: dict) -> list[tuple[str, int | str]]:
    """What a search's plots show on their y axes, as (label, where): objective i, or measure name."""
    objs = result.get("objectives") or []
    dirs = result.get("directions") or []
    out: list[tuple[str, int | str]] = [(f"{o} ({d})", i) for i, (o, d) in enumerate(zip(objs, dirs))]
    return out + [(m, m) for m in result.get("measures") or []]


def _y(trial: dict, where: int | str) -> float | None:
    if isinstance(where, str):
        v = (trial.get("measures") or {}).get(where)
    elif "values" in trial:
        v = (trial["values"] or [None])[where]
    else:
        v = trial.get("value")
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _generations(spec: dict, ctx, field: str):
    """species(search), diversity(search): a strategy search's per-generation facts."""
    from expc.runtime.report import generation_plots

    name, result = _search(spec, ctx)
    return getattr(generation_plots, spec["$op"])(name, result, field)


def _history(spec: dict, ctx, field: str):
    name, result = _search(spec, ctx)
    if result.get("generations"):  # a strategy search: best and mean per generation
        from expc.runtime.report.generation_plots import history

        return history(name, result, field)
    trials = _finished(result)
    dirs = result.get("directions") or []
    if not dirs:  # a sweep: each measure by trial
        return _sweep_history(name, result, trials, field)
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(dirs) == 2:
        pareto = {t["number"] for t in result.get("pareto", [])}
        xs = [t["values"][0] for t in trials]
        ys = [t["values"][1] for t in trials]
        ax.scatter(xs, ys, s=18, color="0.6", label="trials")
        front = sorted((t["values"][0], t["values"][1]) for t in trials if t["number"] in pareto)
        if front:
            ax.plot(*zip(*front), "o-", color="C3", label="Pareto set")
        objs = result.get("objectives", ["objective 0", "objective 1"])
        ax.set_xlabel(f"{objs[0]} ({dirs[0]})")
        ax.set_ylabel(f"{objs[1]} ({dirs[1]})")
    else:
        nums = [t["number"] for t in trials]
        vals = [t["value"] if "value" in t else t["values"][0] for t in trials]
        ax.scatter(nums, vals, s=18, label="trial")
        best, line = None, []
        for v in vals:
            best = v if best is None else (min(best, v) if dirs[0] == "minimize" else max(best, v))
            line.append(best)
        ax.step(nums, line, where="post", color="C3", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(f"{(result.get('objectives') or ['objective'])[0]} ({dirs[0]})")
    ax.set_title(f"search {name}")
    ax.legend()
    return fig


def _sweep_history(name: str, result: dict, trials: list[dict], field: str):
    series = _series(result)
    if not series:
        raise OpError(f"history({name}): the search has neither an objective nor measures", field=field)
    fig, axes = plt.subplots(len(series), 1, figsize=(6, 2.6 * len(series)), sharex=True, squeeze=False)
    for ax, (label, where) in zip(axes[:, 0], series):
        ax.scatter([t["number"] for t in trials], [_y(t, where) for t in trials], s=18)
        ax.set_ylabel(label)
    axes[-1][0].set_xlabel("trial")
    fig.suptitle(f"sweep {name}: measures by trial")
    return fig


def _response(spec: dict, ctx, field: str):
    """One panel per (objective or measure, param): a row per y, a column per numeric param. A param
    drawn log-uniformly gets a log axis; with one param the points are joined in order of the param
    (a grid sweep draws its curve)."""
    name, result = _search(spec, ctx)
    trials = _finished(result)
    params = [p for p in result.get("params", []) if all(isinstance(t["params"].get(p), (int, float))
                                                        for t in trials)]
    if not params:
        raise OpError(f"response({name}): the search has no numeric params to plot", field=field)
    series = _series(result)
    if not series:
        raise OpError(f"response({name}): the search has neither an objective nor measures", field=field)
    log = set(result.get("log") or [])
    best = result.get("best_trial")
    fig, axes = plt.subplots(len(series), len(params), figsize=(3.4 * len(params), 2.8 * len(series)),
                             sharex="col", sharey="row", squeeze=False)
    for r, (label, where) in enumerate(series):
        for c, p in enumerate(params):
            ax = axes[r][c]
            points = sorted((t["params"][p], _y(t, where), t["number"]) for t in trials
                            if _y(t, where) is not None)
            xs = [x for x, _, _ in points]
            ys = [y for _, y, _ in points]
            if len(params) == 1:
                ax.plot(xs, ys, "o-", ms=4)
            else:
                ax.scatter(xs, ys, s=16)
            for x, y, n in points:
                if n == best and not isinstance(where, str):
                    ax.scatter([x], [y], s=60, facecolors="none", edgecolors="C3", label="best")
            if p in log:
                ax.set_xscale("log")
            if r == len(series) - 1:
                ax.set_xlabel(p)
            if c == 0:
                ax.set_ylabel(label)
    what = "objective" if len(series) == 1 and not result.get("measures") else "response"
    fig.suptitle(f"search {name}: {what} by param")
    return fig


def _matrix(spec: dict, ctx, field: str):
    """A continual run's accuracy matrix (runtime/continual/plot.py)."""
    from expc.runtime.continual.plot import matrix_figure

    name = spec["run"]["$ref"]
    return matrix_figure(ctx.evaluate(name, {}), name)


def _curves(spec: dict, ctx, field: str):
    metric = spec.get("metric", "loss")
    fig, ax = plt.subplots(figsize=(6, 4))
    plotted = 0
    for j, ref in enumerate(spec.get("nodes", [])):
        node = ref["$ref"]
        rows = [(s, v) for _, s, v in ctx.metrics(ctx.plan_key(node, {}), metric) if s is not None]
        if not rows:
            ctx.warn(f"curves: no '{metric}' logged for '{node}' in the run registry", field=f"{field}.nodes.{j}")
            continue
        by_step = dict(rows)  # a resumed run logs some steps twice: keep the last
        steps = sorted(by_step)
        ax.plot(steps, [by_step[s] for s in steps], label=node)
        plotted += 1
    if not plotted:
        raise OpError(f"curves: none of the nodes has '{metric}' in the run registry", field=field)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.legend()
    return fig
