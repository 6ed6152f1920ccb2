"""Build a report: the table from computed values, cost lines and plots from the run registry."""

from __future__ import annotations

import math
from typing import Any

from expc.runtime.api import Artifact, OpError
from expc.runtime.ops.replicate import plus_minus


def build_report(p, ctx) -> dict:
    out: dict[str, Any] = {"lines": [], "plots": []}
    if p.table is not None:
        out["table"] = table(p.table, p.columns, p.member, p.digits)
    costs = p.cost if isinstance(p.cost, list) else ([] if p.cost is None else [p.cost])
    for i, c in enumerate(costs):
        line, data = cost_line(c, ctx, f"cost.{i}" if isinstance(p.cost, list) else "cost")
        out["lines"].append(line)
        out.setdefault("costs", []).append(data)
    if p.plot:
        from expc.runtime.report import plots

        for i, spec in enumerate(p.plot):
            path = plots.render(spec, ctx, i)
            out["plots"].append(path.name)
    return out


# -------------------------------------------------------------------------------------------------- table


def _cell(v: Any, member: str, digits: int) -> str:
    if member == "value" and (spread := plus_minus(v, digits)) is not None:
        return spread  # a replicate: `0.912 ± 0.008 (n=5)`; a comparison: `+0.012 [-0.003, +0.027] (n=5)`
    if isinstance(v, dict) and member in v:
        v = v[member]
    elif isinstance(v, dict) and "value" in v:
        v = v["value"]
    if isinstance(v, bool) or v is None:
        return str(v).lower() if isinstance(v, bool) else "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if math.isfinite(v) else str(v)
    if isinstance(v, Artifact):
        return v.tag
    if isinstance(v, dict):
        return ", ".join(f"{k}={_cell(x, member, digits)}" for k, x in v.items())
    return str(v)


def table(rows: dict[str, Any], columns: list[str] | None, member: str, digits: int) -> dict:
    nested = all(isinstance(v, dict) and member not in v and "value" not in v for v in rows.values())
    if not nested:
        headers = ["", *(columns or [member])]
        return {"headers": headers, "rows": [[name, _cell(v, member, digits)] for name, v in rows.items()]}
    cols: list[str] = list(columns or [])
    if not cols:
        for v in rows.values():
            cols.extend(k for k in v if k not in cols)
    body = [[name, *(_cell(v.get(c), member, digits) for c in cols)] for name, v in rows.items()]
    return {"headers": ["", *cols], "rows": body}


# -------------------------------------------------------------------------------------------------- costs


def ran_seconds(ctx, node: str) -> float | None:
    """Seconds of the last real execution of the node (as planned now), from the run registry."""
    key = ctx.plan_key(node, {})
    ran = [s for _, status, s, _ in ctx.node_runs(key) if status == "ran" and s is not None]
    return ran[-1] if ran else None


def cost_line(spec: dict, ctx, field: str) -> tuple[str, dict]:
    search = spec["search"]["$ref"]
    retrain = spec["retrain"]["$ref"]
    result = ctx.evaluate(search, {})
    n = len(result.get("trials", []))
    s_search = ran_seconds(ctx, search)
    s_retrain = ran_seconds(ctx, retrain)
    if s_search is None or s_retrain is None:
        missing = search if s_search is None else retrain
        raise OpError(f"cost: the run registry has no measured run of '{missing}' (was the store copied "
                      "without runs.sqlite?)", field=field)
    trial_s = [t["seconds"] for t in result.get("trials", []) if t.get("seconds") is not None]
    per_trial = sum(trial_s) / len(trial_s) if trial_s else s_search / max(n, 1)
    grid = n * s_retrain
    best = ", ".join(f"{k} = {_short(v)}" for k, v in (result.get("best") or {}).items())
    line = (f"{search}: {n} weightings searched in {s_search:.1f} s (one trial {per_trial:.2f} s); "
            f"a grid of {n} by retraining '{retrain}' ({s_retrain:.1f} s each) would take {grid:.0f} s, "
            f"{_ratio(grid / max(s_search, 1e-9))} the time of the search. Best: {best}")
    return line, {"search": search, "trials": n, "search_seconds": s_search, "trial_seconds": per_trial,
                  "retrain": retrain, "retrain_seconds": s_retrain, "grid_seconds": grid}


def _ratio(r: float) -> str:
    return f"{r:.0f}x" if r >= 10 else f"{r:.2g}x"


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
