"""Search distributions for `param NAME ~ DIST`. Inline: their value is the validated params."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from expc.runtime.registry import Distribution, Variadic, op
from expc.runtime.types import value_type

DIST = value_type("dist", "a search distribution (uniform, loguniform, int, choice)", node=False)


class _Range(Distribution):
    """A numeric range [lo, hi]."""

    def contains(self, value: Any) -> str | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "is a number"
        if not self.lo <= value <= self.hi:
            return f"must be within [{self.lo}, {self.hi}]"
        return None

    def ends(self) -> list[Any]:
        return [self.lo, self.hi]

    def bounds(self) -> tuple[float, float]:
        return (self.lo, self.hi)


class UniformParams(_Range):
    lo: float = Field(description="lower bound")
    hi: float = Field(description="upper bound")
    default: float | None = Field(None, description="the value outside a search")

    def value_type(self) -> str:
        return "number"

    def grid(self, points: int) -> list[Any]:
        import numpy as np

        return [float(x) for x in np.linspace(float(self.lo), float(self.hi), points)]

    def optuna(self):
        from optuna.distributions import FloatDistribution

        return FloatDistribution(float(self.lo), float(self.hi))

    @model_validator(mode="after")
    def _bounds(self):
        if not self.lo < self.hi:
            raise ValueError(f"lo must be below hi (got lo = {self.lo}, hi = {self.hi})")
        if self.default is not None and not self.lo <= self.default <= self.hi:
            raise ValueError(f"default {self.default} is outside [{self.lo}, {self.hi}]")
        return self


@op("uniform", params=UniformParams, returns="dist", inline=True)
def uniform(p, ctx):
    """A float drawn uniformly from [lo, hi]."""


class LogUniformParams(UniformParams):
    lo: float = Field(gt=0, description="lower bound (> 0)")
    hi: float = Field(gt=0, description="upper bound")

    def grid(self, points: int) -> list[Any]:
        import numpy as np

        return [float(x) for x in np.geomspace(float(self.lo), float(self.hi), points)]

    def optuna(self):
        from optuna.distributions import FloatDistribution

        return FloatDistribution(float(self.lo), float(self.hi), log=True)


@op("loguniform", params=LogUniformParams, returns="dist", inline=True)
def loguniform(p, ctx):
    """A float drawn log-uniformly from [lo, hi] (lo > 0): for learning rates and other scales."""


class IntParams(_Range):
    lo: int = Field(description="lower bound (inclusive)")
    hi: int = Field(description="upper bound (inclusive)")
    step: int = Field(1, ge=1, description="spacing of the values")
    default: int | None = Field(None, description="the value outside a search")

    @model_validator(mode="after")
    def _bounds(self):
        if not self.lo <= self.hi:
            raise ValueError(f"lo must not exceed hi (got lo = {self.lo}, hi = {self.hi})")
        if self.default is not None and not self.lo <= self.default <= self.hi:
            raise ValueError(f"default {self.default} is outside [{self.lo}, {self.hi}]")
        return self

    def value_type(self) -> str:
        return "int"

    def grid(self, points: int) -> list[Any]:
        return list(range(int(self.lo), int(self.hi) + 1, int(self.step)))

    def optuna(self):
        from optuna.distributions import IntDistribution

        return IntDistribution(int(self.lo), int(self.hi), step=int(self.step))


@op("int", params=IntParams, returns="dist", inline=True)
def int_(p, ctx):
    """An integer from lo to hi inclusive."""


class ChoiceParams(Distribution):
    options: Annotated[list[Any], Variadic()] = Field(min_length=1, description="the choices")
    default: Any = Field(None, description="the value outside a search (one of the options)")

    @model_validator(mode="after")
    def _default(self):
        if self.default is not None and self.default not in self.options:
            raise ValueError(f"default {self.default!r} is not one of the options")
        return self

    def value_type(self) -> str:
        return "any"

    def contains(self, value: Any) -> str | None:
        return None if value in self.options else f"must be one of {self.options}"

    def ends(self) -> list[Any]:
        return list(self.options)

    def grid(self, points: int) -> list[Any]:
        return list(self.options)

    def optuna(self):
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(list(self.options))


@op("choice", params=ChoiceParams, returns="dist", inline=True)
def choice(p, ctx):
    """One of the given values: choice("adamw", "sgd", default = "adamw")."""
