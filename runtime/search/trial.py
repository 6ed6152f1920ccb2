"""A search's objectives and measures: the nodes a trial evaluates (with ctx.map), and the number each
result gives."""

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


@dataclass(frozen=True)
class Measure:
    """One measure of a sweep: recorded at every trial under its name, optimized by nobody."""

    name: str
    node: str
    path: tuple[Any, ...]

    @property
    def label(self) -> str:
        return ".".join([self.node, *map(str, self.path)])


def targets_of(objective: Any) -> list[Target]:
    if objective is None:  # a sweep: measures only
        return []
    items = objective if isinstance(objective, list) else [objective]
    out = []
    for i, o in enumerate(items):
        t = o.get("target")
        field = "objective" if not isinstance(objective, list) else f"objective.{i}"
        if not (isinstance(t, dict) and "$ref" in t):
            raise OpError(f"{o['$op']}(...) needs an evaluation node to optimize, got {t!r}", field=field)
        out.append(Target(t["$ref"], tuple(t.get("path", [])), o["$op"]))
    return out


def measures_of(measure: dict[str, Any] | None) -> list[Measure]:
    """The search's `measure` record (its validator has checked that each value is a node), in order."""
    return [Measure(name, ref["$ref"], tuple(ref.get("path", []))) for name, ref in (measure or {}).items()]


def number_of(value: Any, node: str, path: tuple[Any, ...], field: str, what: str) -> float:
    """A metric's "value", or the number itself, after following the member path."""
    label = ".".join([node, *map(str, path)])
    for m in path:
        try:
            value = value[m]
        except (KeyError, IndexError, TypeError):
            raise OpError(f"the result of '{node}' has no member '{m}'", field=field) from None
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OpError(f"the {what} '{label}' is not a number (got {type(value).__name__}): "
                      f"use a metric or a numeric member of a result", field=field)
    return float(value)


def objective_value(value: Any, target: Target) -> float:
    return number_of(value, target.node, target.path, "objective", "objective")


def measure_value(value: Any, measure: Measure) -> float:
    return number_of(value, measure.node, measure.path, f"measure.{measure.name}", "measure")


def behaviour_value(value: Any, measure: Measure) -> list[float]:
    """A novelty behaviour: the measure's number, or its vector (a list of numbers, nested lists
    flattened), after following the member path and a metric's "value"."""
    for m in measure.path:
        try:
            value = value[m]
        except (KeyError, IndexError, TypeError):
            raise OpError(f"the result of '{measure.node}' has no member '{m}'",
                          field=f"measure.{measure.name}") from None
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    flat: list[float] = []
    stack = [value]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(reversed(x))
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            flat.append(float(x))
        else:
            raise OpError(f"the behaviour '{measure.label}' must be a number or a list of numbers, got "
                          f"{type(x).__name__}", field=f"measure.{measure.name}")
    if not flat:
        raise OpError(f"the behaviour '{measure.label}' is empty", field=f"measure.{measure.name}")
    return flat


def is_finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)
