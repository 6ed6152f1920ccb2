"""A search's objectives: the nodes a trial evaluates (with ctx.map), and the number each result gives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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


def is_finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)
