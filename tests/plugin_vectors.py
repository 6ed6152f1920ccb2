"""A registry module written the way a new operator family is: a value type with members and an algebra,
operators that produce and evaluate it, a search-like operator that evaluates nodes under param
bindings, and a new distribution. tests/test_plugin_family.py checks, plans and runs a program
against `collect([*builtin_modules(), this module])`: nothing in spec/ or interpreter/ knows of it."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field, model_validator

from expc.runtime.api import OpError
from expc.runtime.registry import Deferred, Distribution, Evaluates, Input, Params, op
from expc.runtime.types import value_type

# ---------------------------------------------------------------------------------------------- types

VEC = value_type(
    "vec", "a vector of numbers (members .norm, .size); + - and scaling build one vec_algebra node",
    members={"norm": "number", "size": "int"}, kinds={"data"}, algebra="vec_algebra",
    summary=lambda v: f"vec of {v['size']}, norm {v['norm']:.3g}",
)
SCAN = value_type(
    "scan", "the result of a scan (members .best, .best_value, .values)",
    members={"best": "record", "best_value": "number", "values": "list"}, kinds={"search"},
)


def _vec(values: list[float]) -> dict:
    return {"values": [float(x) for x in values], "norm": math.sqrt(sum(x * x for x in values)),
            "size": len(values)}


# ------------------------------------------------------------------------------------------ operators


class VecParams(Params):
    values: list[float] = Field(min_length=1, description="the components")


@op("vec", params=VecParams, kinds={"data"}, returns="vec")
def vec(p: VecParams, ctx) -> dict:
    """A constant vector."""
    return _vec(p.values)


class VecAlgebraParams(Params):
    models: list[Input["vec"]] = Field(description="the distinct operands")
    expr: dict = Field(description="the expression tree over the operands")


def _eval(tree: Any, operands: list[dict]) -> Any:
    if isinstance(tree, (int, float)):
        return float(tree)
    if "model" in tree:
        return list(operands[tree["model"]]["values"])
    args = [_eval(a, operands) for a in tree["args"]]
    op_ = tree["op"]
    if op_ == "neg":
        return [-x for x in args[0]]
    a, b = args
    if op_ in ("add", "sub"):
        if len(a) != len(b):
            raise OpError(f"cannot {op_} vectors of sizes {len(a)} and {len(b)}", field="expr")
        return [x + y if op_ == "add" else x - y for x, y in zip(a, b)]
    if op_ == "mul":
        scalar, v = (a, b) if isinstance(a, float) else (b, a)
        return [scalar * x for x in v]
    if op_ == "div":
        return [x / b for x in a]
    raise OpError(f"unknown vector operation {op_!r}", field="expr")


@op("vec_algebra", params=VecAlgebraParams, kinds={"data"}, returns="vec")
def vec_algebra(p: VecAlgebraParams, ctx) -> dict:
    """Arithmetic over vectors, as the checker lowered it (one node per expression)."""
    return _vec(_eval(p.expr, list(p.models)))


class DistanceParams(Params):
    v: Input["vec"] = Field(description="a vector")
    to: list[float] = Field(description="the point to measure the distance to")


@op("distance", params=DistanceParams, kinds={"eval"}, returns="metric")
def distance(p: DistanceParams, ctx) -> dict:
    """Euclidean distance from a vector to a point (a metric: .value)."""
    if len(p.to) != p.v["size"]:
        raise OpError(f"the point has {len(p.to)} components, the vector {p.v['size']}", field="to")
    return {"value": math.sqrt(sum((x - y) ** 2 for x, y in zip(p.v["values"], p.to)))}


# ------------------------------------------------------------------------------------- a distribution


class HalfParams(Distribution):
    """Values in [0, scale]; the grid is `points` evenly spaced values."""

    scale: float = Field(gt=0, description="the largest value")
    default: float | None = Field(None, description="the value outside a search")

    @model_validator(mode="after")
    def _default(self):
        if self.default is not None and not 0 <= self.default <= self.scale:
            raise ValueError(f"default {self.default} is outside [0, {self.scale}]")
        return self

    def value_type(self) -> str:
        return "number"

    def contains(self, value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= self.scale
        return None if ok else f"must be within [0, {self.scale}]"

    def ends(self) -> list[Any]:
        return [0.0, self.scale]

    def bounds(self) -> tuple[float, float]:
        return (0.0, self.scale)

    def grid(self, points: int) -> list[Any]:
        return [self.scale * i / (points - 1) for i in range(points)]


@op("half", params=HalfParams, returns="dist", inline=True)
def half(p: HalfParams, ctx=None) -> None:
    """A number from [0, scale]."""


# ---------------------------------------------------------------------- a search-like operator


class ScanParams(Params):
    objective: Annotated[Any, Deferred()] = Field(description="a metric node to minimize")
    over: Annotated[list[Any], Deferred()] = Field(min_length=1, max_length=1, description="[the param to scan]")
    points: int = Field(5, ge=2, le=1000, description="grid points")


@op("scan", params=ScanParams, kinds={"search"}, returns="scan", evaluates=Evaluates(over="over"))
def scan(p: ScanParams, ctx) -> dict:
    """Evaluate the objective at every grid point of one param; the best point wins."""
    name = p.over[0]["$param"]
    dist = ctx.distribution(name)
    if dist is None:
        raise OpError(f"'{name}' is not a searched param", field="over.0")
    values = []
    for x in dist.grid(p.points):
        result = ctx.evaluate(p.objective["$ref"], {name: x})
        values.append({"x": x, "value": result["value"]})
    best = min(values, key=lambda r: r["value"])
    return {"best": {name: best["x"]}, "best_value": best["value"], "values": values}
