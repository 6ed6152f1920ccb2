"""Architecture spaces for `param NAME ~ ...` whose values are networks (genomes, JSON):

    param arch ~ mlps(depth = [1, 3], width = [8, 128], activations = ["relu", "tanh"])
    train clf = fit(arch, digits.train, steps = 200)

A genome is an `mlp(...)` value, so `fit(arch, ...)` trains it exactly as if the user had written
that value. Outside a search the param is the space's default; a search strategy (`evolution(...)`)
samples, mutates and crosses genomes over; an Optuna sampler draws a seed and samples from it.
The operations themselves are in expc.runtime.genomes (no torch)."""

from __future__ import annotations

from pydantic import Field, field_validator

from expc.runtime.capabilities import SpaceGenome
from expc.runtime.ops.nets import ACTIVATIONS, check_activation
from expc.runtime.registry import op


def _pair(v: list[int], what: str, lo: int, hi: int) -> list[int]:
    if len(v) != 2 or v[0] > v[1]:
        raise ValueError(f"{what} is a range [lo, hi] with lo <= hi, got {v}")
    if v[0] < lo or v[1] > hi:
        raise ValueError(f"{what} must lie within [{lo}, {hi}], got {v}")
    return v


class MlpsParams(SpaceGenome):
    depth: list[int] = Field([1, 3], description="[lo, hi]: the number of hidden layers")
    width: list[int] = Field([8, 128], description="[lo, hi]: the width of each hidden layer")
    activations: list[str] = Field(["relu", "tanh"], min_length=1,
                                   description=f"the hidden activations to choose from ({', '.join(ACTIVATIONS)})")

    @field_validator("depth")
    @classmethod
    def _depth(cls, v):
        return _pair(v, "depth", 1, 64)

    @field_validator("width")
    @classmethod
    def _width(cls, v):
        return _pair(v, "width", 1, 4096)

    @field_validator("activations")
    @classmethod
    def _activations(cls, v):
        for a in v:
            check_activation(a)
        if len(set(v)) != len(v):
            raise ValueError("an activation is listed twice")
        return v

    def _space(self):
        from expc.runtime.genomes.mlps import MlpSpace

        return MlpSpace(tuple(self.depth), tuple(self.width), tuple(self.activations))

    def value_type(self) -> str:
        return "net"

    def default(self) -> dict:
        """`depth[0]` layers of the geometric mean of `width`, the first activation."""
        return self._space().default()

    def describe(self, genome: dict) -> list[str]:
        return self._space().describe(genome)


@op("mlps", params=MlpsParams, returns="dist", inline=True)
def mlps(p: MlpsParams, ctx=None) -> None:
    """A space of multi-layer perceptrons for `param arch ~ mlps(...)`: `depth` hidden layers of widths in
    `width`, one activation from `activations`. Each value is an `mlp(hidden = [...], activation = ...)`
    that `fit` trains; searched by `evolution(...)` (mutation resizes, inserts or removes a layer or
    changes the activation; crossover is one-point on the layer lists) or by an Optuna sampler (a random
    network per trial)."""
