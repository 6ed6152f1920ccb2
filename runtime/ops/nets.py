"""Network architectures (`net`, inline): `mlp(...)` and `cnn(...)`. An architecture is a value, not a
node: `fit(mlp(hidden = [64]), data)` trains it, `param arch ~ choice(mlp(...), cnn(...))` searches
it, and POET's `agent = mlp(hidden = [40, 40])` evolves it. What `fit` builds from one is in
expc.runtime.nets (torch, imported only when a network is built).

Defaults that differ by use are None here and filled in by the user: `mlp` hidden layers are [64] and
the activation relu for a classifier; [40, 40] and tanh for a POET agent (as published)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from expc.runtime.registry import Params, op
from expc.runtime.types import value_type
from expc.spec.diagnostics import did_you_mean

NET = value_type("net", "a network architecture: mlp(...), cnn(...) (what fit trains; mlp is also a POET agent)",
                 node=False, kinds={"model"})

ACTIVATIONS = ("relu", "tanh", "gelu", "silu", "sigmoid")
Activation = Literal["relu", "tanh", "gelu", "silu", "sigmoid"]

# the defaults of a classifier and of a POET agent (see the module docstring)
CLASSIFIER_DEFAULTS = {"hidden": [64], "activation": "relu"}
AGENT_DEFAULTS = {"hidden": [40, 40], "activation": "tanh"}


def check_activation(v: Any) -> Any:
    """An unknown activation names the known ones and the closest (a plain Literal error would not)."""
    if v is None or v in ACTIVATIONS or not isinstance(v, str):
        return v
    hint = did_you_mean(v, ACTIVATIONS)
    known = ", ".join(ACTIVATIONS)
    message = f"unknown activation {v!r}" + (f": {hint}" if hint else "") + f" (one of {known})"
    raise PydanticCustomError("activation", message.replace("{", "{{").replace("}", "}}"))


def _widths(v: list[int] | None, what: str, hi: int = 4096) -> list[int] | None:
    if v is not None and any(not 1 <= h <= hi for h in v):
        raise ValueError(f"{what} must be in [1, {hi}], got {v}")
    return v


class Architecture(Params):
    """Base of every architecture value that `fit` can build into a classifier: `arch()` is the JSON
    stored in config.json (its "kind" names the torch builder in expc.runtime.nets.build.BUILDERS)."""

    def arch(self, defaults: dict | None = None) -> dict:
        raise NotImplementedError

    def check_data(self, shape: list[int], classes: int) -> tuple[str, str] | None:
        """(field, message) when the architecture cannot take examples of `shape` with `classes`."""
        return None


class MlpParams(Architecture):
    hidden: list[int] | None = Field(None, description="hidden layer widths (default [64]; [40, 40] for a POET agent)")
    activation: Activation | dict | None = Field(
        None, description="hidden activation: a name, or an activation value such as sigmoid(slope = 2) "
        "(default relu; tanh for a POET agent)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each hidden layer (classifiers only)")
    inputs: int | None = Field(None, ge=1, le=100_000, description="input size (default: from the data or env)")
    outputs: int | None = Field(None, ge=1, le=100_000,
                                description="output size (default: the classes, or the env's actions)")

    @field_validator("activation", mode="before")
    @classmethod
    def _activation(cls, v):
        from expc.runtime.ops import activations

        if isinstance(v, Params):  # an activation value already built: back to its JSON form
            v = activations.wire(v)
        return activations.check_value(v) if isinstance(v, dict) else check_activation(v)

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, v):
        return _widths(v, "hidden widths")

    def arch(self, defaults: dict) -> dict:
        """The architecture as stored in a classifier's config.json, defaults filled in."""
        from expc.runtime.ops.activations import to_json

        return {"kind": "mlp", "hidden": list(self.hidden if self.hidden is not None else defaults["hidden"]),
                "activation": to_json(self.activation or defaults["activation"]), "dropout": self.dropout}

    def check_data(self, shape, classes):
        import math

        if self.inputs is not None and self.inputs != math.prod(shape):
            return "model", f"mlp(inputs = {self.inputs}) but the examples have {math.prod(shape)} features (shape {shape})"
        if self.outputs is not None and self.outputs != classes:
            return "model", f"mlp(outputs = {self.outputs}) but the data has {classes} classes"
        return None

    def for_agent(self) -> "MlpParams":
        """The agent's settings with POET's defaults filled in (what the POET driver uses)."""
        return self.model_copy(update={"hidden": self.hidden if self.hidden is not None else AGENT_DEFAULTS["hidden"],
                                       "activation": self.activation or AGENT_DEFAULTS["activation"]})


@op("mlp", params=MlpParams, kinds={"model"}, returns="net", inline=True)
def mlp(p: MlpParams, ctx=None) -> MlpParams:
    """A multi-layer perceptron: a classifier architecture for `fit`, or a POET agent's policy."""
    return p


class CnnParams(Architecture):
    channels: list[int] = Field([16, 32], min_length=1, description="output channels of each conv block")
    kernel: int = Field(3, ge=1, le=15, description="square kernel size (odd sizes keep the resolution)")
    pool: Literal["max", "avg", "none"] = Field("max", description="2x2 pooling after each conv block")
    hidden: list[int] = Field([64], description="widths of the dense layers before the head")
    activation: Activation = Field("relu", description="activation after each conv and dense layer")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout after each dense hidden layer")

    @field_validator("activation", mode="before")
    @classmethod
    def _activation(cls, v):
        return check_activation(v)

    @field_validator("channels")
    @classmethod
    def _channels(cls, v):
        return _widths(v, "channels", hi=2048)

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, v):
        return _widths(v, "hidden widths")

    def arch(self, defaults: dict | None = None) -> dict:
        return {"kind": "cnn", "channels": list(self.channels), "kernel": self.kernel, "pool": self.pool,
                "hidden": list(self.hidden), "activation": self.activation, "dropout": self.dropout}


@op("cnn", params=CnnParams, kinds={"model"}, returns="net", inline=True)
def cnn(p: CnnParams, ctx=None) -> CnnParams:
    """A convolutional classifier for images ([channels, height, width] or [height, width]): conv
    blocks (conv, activation, 2x2 pooling), then dense layers, then the head."""
    return p
