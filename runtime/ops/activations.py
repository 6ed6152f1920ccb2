"""Activation functions with parameters (type `activation`, inline): `sigmoid(slope = 1, offset = 0)`,
usable wherever an architecture takes an activation (`mlp(activation = sigmoid(slope = 2))`) and as the
motif a Synthetic Petri Dish ranks (`petri_dish(motif = sigmoid(slope = s, offset = o), ...)`).

An architecture stores an activation as JSON in its config.json: a name ("relu") or a record with a
"kind" ({"kind": "sigmoid", "slope": 2.0, "offset": 0.0}); expc.runtime.nets.build turns either into
the function."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from expc.runtime.registry import Params, op
from expc.runtime.types import value_type

ACTIVATION = value_type("activation", "an activation function with parameters, inline: sigmoid(slope, offset)",
                        node=False)


class SigmoidParams(Params):
    slope: float = Field(1.0, ge=-100.0, le=100.0, description="the slope a: sigmoid(a * (x - b))")
    offset: float = Field(0.0, ge=-100.0, le=100.0, description="the offset b: sigmoid(a * (x - b))")

    def spec(self) -> dict:
        """The JSON an architecture stores (config.json's net.activation)."""
        return {"kind": "sigmoid", "slope": float(self.slope), "offset": float(self.offset)}

    def describe(self) -> str:
        return f"sigmoid(slope={self.slope:g}, offset={self.offset:g})"


@op("sigmoid", params=SigmoidParams, returns="activation", inline=True)
def sigmoid(p: SigmoidParams, ctx=None) -> SigmoidParams:
    """The logistic function with a slope and an offset, sigmoid(slope * (x - offset)): slope 1 and
    offset 0 is the ordinary sigmoid. An activation value, e.g. `mlp(activation = sigmoid(slope = 4))`."""
    return p


# the activation operators (inline values) and their params models
PARAMETRIC = {"sigmoid": SigmoidParams}


def check_value(v: dict) -> dict:
    """The JSON form of an activation value ({"$op": "sigmoid", ...}) checked; ValueError otherwise."""
    name = v.get("$op")
    if name not in PARAMETRIC:
        raise ValueError(f"expected an activation name or {', '.join(k + '(...)' for k in PARAMETRIC)}, "
                         f"got {name}(...)" if name else f"expected an activation, got {v!r}")
    fields = {k: x for k, x in v.items() if k != "$op"}
    if not any(isinstance(x, dict) for x in fields.values()):  # symbolic fields are checked when bound
        PARAMETRIC[name].model_validate(fields)
    return v


def wire(p: Params) -> dict:
    """A built activation value back in its JSON form, {"$op": "sigmoid", "slope": ..., ...}."""
    name = next(k for k, cls in PARAMETRIC.items() if isinstance(p, cls))
    return {"$op": name, **p.model_dump()}


def to_json(v: Any) -> Any:
    """What an architecture stores for an activation: the name, or the value's record (built or not)."""
    if isinstance(v, Params) and hasattr(v, "spec"):
        return v.spec()
    if isinstance(v, dict) and v.get("$op") in PARAMETRIC:
        return PARAMETRIC[v["$op"]].model_validate({k: x for k, x in v.items() if k != "$op"}).spec()
    return v


def describe(v: Any) -> str:
    """`relu` or `sigmoid(slope=2, offset=0)`: an activation as text."""
    if isinstance(v, dict) and v.get("kind") in PARAMETRIC:
        v = PARAMETRIC[v["kind"]].model_validate({k: x for k, x in v.items() if k != "kind"})
    elif isinstance(v, dict) and v.get("$op") in PARAMETRIC:
        v = PARAMETRIC[v["$op"]].model_validate({k: x for k, x in v.items() if k != "$op"})
    return v.describe() if hasattr(v, "describe") else str(v)
