"""Rank correlation between two measurements of a search's trials (the `rank_correlation` operator)."""

from __future__ import annotations

import math
from typing import Any

from expc.runtime.api import OpError


def trial_value(trial: dict, name: str) -> Any:
    """A trial's measure `name`, its objective ("objective" or "value"), or its param `name`."""
    measures = trial.get("measures") or {}
    if name in measures:
        return measures[name]
    if name in ("objective", "value"):
        return trial.get("value")
    if name == "predicted":  # the predictor pruner's forecast of the trial's final value
        return trial.get("predicted")
    return (trial.get("params") or {}).get(name)


def _known(search: dict) -> list[str]:
    names = list(search.get("measures") or []) + list(search.get("params") or [])
    predicted = ["predicted"] if any("predicted" in t for t in search.get("trials") or []) else []
    return names + (["objective"] if search.get("directions") else []) + predicted


def rank_correlation(search: dict, x: str, y: str, method: str) -> dict:
    from scipy import stats

    known = _known(search)
    for field, name in (("x", x), ("y", y)):
        if name not in known and not (name == "value" and "objective" in known):
            raise OpError(f"the search has no measure, param or objective named '{name}' (it has: "
                          f"{', '.join(known) or 'nothing'})", field=field)
    pairs = []
    for t in search.get("trials") or []:
        if t.get("state") != "complete":
            continue
        a, b = trial_value(t, x), trial_value(t, y)
        if _number(a) and _number(b):
            pairs.append((float(a), float(b)))
    if len(pairs) < 3:
        raise OpError(f"{len(pairs)} finished trial(s) have both '{x}' and '{y}': a rank correlation needs at least 3",
                      field="search")
    xs, ys = [a for a, _ in pairs], [b for _, b in pairs]
    if len(set(xs)) == 1 or len(set(ys)) == 1:
        raise OpError(f"'{x if len(set(xs)) == 1 else y}' has the same value in every trial: no ranking to compare",
                      field="x" if len(set(xs)) == 1 else "y")
    result = stats.spearmanr(xs, ys) if method == "spearman" else stats.kendalltau(xs, ys)
    return {"value": float(result.statistic), "p": float(result.pvalue), "n": len(pairs), "method": method,
            "x": x, "y": y, "pairs": [list(pr) for pr in pairs]}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
