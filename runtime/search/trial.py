"""One trial: evaluate the objective targets under a trial's params, in this process or another one.

`run_trial` is what a local worker process or a Ray task runs: plain JSON in, plain JSON out (no
closures cross the process boundary); it rebuilds the session from the worker spec and writes into
the same store, so upstream work done by the search's own process is reused.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from expc.runtime.api import OpError


@dataclass(frozen=True)
class Target:
    """One objective: the node to evaluate, the member path into its result, and the direction."""

    node: str
    path: tuple[Any, ...]
    direction: str  # "minimize" | "maximize"

    @property
    def label(self) -> str:
        return ".".join([self.node, *map(str, self.path)])


def targets_of(objective: Any) -> list[Target]:
    items = objective if isinstance(objective, list) else [objective]
    out = []
    for i, o in enumerate(items):
        t = o.get("target")
        field = "objective" if not isinstance(objective, list) else f"objective.{i}"
        if not (isinstance(t, dict) and "$ref" in t):
            raise OpError(f"{o['$op']}(...) needs an evaluation node to optimize, got {t!r}", field=field)
        out.append(Target(t["$ref"], tuple(t.get("path", [])), o["$op"]))
    return out


def objective_value(value: Any, target: Target) -> float:
    """A metric's "value", or the number itself, after following the member path."""
    for m in target.path:
        try:
            value = value[m]
        except (KeyError, IndexError, TypeError):
            raise OpError(f"the result of '{target.node}' has no member '{m}'", field="objective") from None
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OpError(f"the objective '{target.label}' is not a number (got {type(value).__name__}): "
                      "optimize a metric or a numeric member of a result", field="objective")
    return float(value)


def evaluate_in_process(evaluate: Callable[..., Any], targets: list[Target], bindings: dict,
                        on_metric: Callable | None = None) -> dict:
    from expc.runtime.api import Pruned

    started = time.time()
    try:
        values = [objective_value(evaluate(t.node, bindings, on_metric=on_metric), t) for t in targets]
    except Pruned as e:
        return {"ok": False, "pruned": True, "reason": str(e), "seconds": time.time() - started}
    return {"ok": True, "values": values, "seconds": time.time() - started}


def run_trial(spec: dict, targets: list[list[Any]], bindings: dict) -> dict:
    """Worker entry point. targets: [[node, [path...], direction], ...]. Returns {"ok", "values",
    "seconds"} or {"ok": False, "error": diagnostic JSON}."""
    from expc.interpreter.remote import evaluate_remote

    started = time.time()
    values = []
    for node, path, direction in targets:
        r = evaluate_remote(spec, node, bindings)
        if not r.get("ok"):
            return {"ok": False, "error": r.get("error")}
        try:
            values.append(objective_value(r["value"], Target(node, tuple(path), direction)))
        except OpError as e:
            return {"ok": False, "error": {"code": "E600", "message": e.message, "span": None, "hint": e.hint}}
    return {"ok": True, "values": values, "seconds": time.time() - started}


def is_finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)
