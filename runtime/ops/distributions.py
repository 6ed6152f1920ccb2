"""Search distributions for `param NAME ~ DIST`. Inline: their value is the validated params."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from expc.runtime.registry import Params, Variadic, op


class UniformParams(Params):
    lo: float = Field(description="lower bound")
    hi: float = Field(description="upper bound")
    default: float | None = Field(None, description="the value outside a search")

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


@op("loguniform", params=LogUniformParams, returns="dist", inline=True)
def loguniform(p, ctx):
    """A float drawn log-uniformly from [lo, hi] (lo > 0): for learning rates and other scales."""


class IntParams(Params):
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


@op("int", params=IntParams, returns="dist", inline=True)
def int_(p, ctx):
    """An integer from lo to hi inclusive."""


class ChoiceParams(Params):
    options: Annotated[list[Any], Variadic()] = Field(min_length=1, description="the choices")
    default: Any = Field(None, description="the value outside a search (one of the options)")

    @model_validator(mode="after")
    def _default(self):
        if self.default is not None and self.default not in self.options:
            raise ValueError(f"default {self.default!r} is not one of the options")
        return self


@op("choice", params=ChoiceParams, returns="dist", inline=True)
def choice(p, ctx):
    """One of the given values: choice("adamw", "sgd", default = "adamw")."""
