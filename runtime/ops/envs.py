"""Environment operators for POET: `gym(...)`, `bipedal(...)`, `point(...)` and the mutable parameters
`mutable(...)`, `mutable_range(...)`. All are inline: checked in their JSON form, they reach the `poet`
operator built, as the `EnvTemplate` and `Mutable` objects of expc.runtime.poet.spec. Nothing heavy is
imported here (that module imports numpy: only when a value is built)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type

if TYPE_CHECKING:
    from expc.runtime.poet.spec import EnvTemplate, Mutable

ENV = value_type("env", "an environment (gymnasium)", kinds={"env"})
MUTABLE = value_type("mutable", "a mutable environment parameter", node=False)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_param_value(name: str, v: Any, ranges: bool = False) -> Any:
    """An environment parameter: a number, a mutable(...) (or mutable_range(...) where `ranges`), or
    a fixed [lo, hi] interval where `ranges`."""
    if v is None or _is_number(v):
        return v
    if isinstance(v, dict):
        kinds = ("mutable", "mutable_range") if ranges else ("mutable",)
        if v.get("$op") in kinds:
            return v
        raise ValueError(f"{name}: expected a number or {' / '.join(k + '(...)' for k in kinds)}, got {v.get('$op', 'a record')}")
    if ranges and isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_number(x) for x in v) and v[0] <= v[1]:
        return list(v)
    raise ValueError(f"{name}: expected a number or mutable(...), got {v!r}")


class MutableParams(Params):
    start: float = Field(description="initial value")
    step: float = Field(gt=0, description="mutation step: a child moves by U(-step, step)")
    min: float = Field(description="lower bound")
    max: float = Field(description="upper bound")
    digits: int = Field(1, ge=0, le=8, description="values are rounded to this many decimals (POET: 1)")

    @model_validator(mode="after")
    def _bounds(self):
        if not self.min <= self.start <= self.max:
            raise ValueError(f"need min <= start <= max, got {self.min} <= {self.start} <= {self.max}")
        return self


@op("mutable", params=MutableParams, returns="mutable", inline=True)
def mutable(p: MutableParams, ctx=None) -> Mutable:
    """A mutable environment parameter: start value, mutation step, bounds."""
    from expc.runtime.poet.spec import Mutable

    return Mutable("", "scalar", float(p.start), float(p.step), float(p.min), float(p.max), p.digits)


class MutableRangeParams(Params):
    start: list[float] = Field(min_length=2, max_length=2, description="initial [lo, hi]; also the lower bounds of both ends")
    step: float = Field(gt=0, description="each end moves by -step, 0 or +step")
    max: float | list[float] = Field(description="upper bound of both ends, or [max_lo, max_hi]")
    enabled: bool = Field(True, description="false: absent at first (no obstacles); the first mutation switches it on at start")
    digits: int = Field(1, ge=0, le=8, description="values are rounded to this many decimals")

    @model_validator(mode="after")
    def _bounds(self):
        lo, hi = self.start
        mx = [self.max, self.max] if isinstance(self.max, (int, float)) else list(self.max)
        if len(mx) != 2:
            raise ValueError("max: give one number or [max_lo, max_hi]")
        if lo > hi or mx[0] < lo or mx[1] < hi:
            raise ValueError(f"need start lo <= hi and max >= start, got start {self.start}, max {self.max}")
        return self


@op("mutable_range", params=MutableRangeParams, returns="mutable", inline=True)
def mutable_range(p: MutableRangeParams, ctx=None) -> Mutable:
    """A mutable interval parameter [lo, hi] (POET's pit gap and stump height)."""
    from expc.runtime.poet.spec import Mutable

    start = [float(x) for x in p.start]
    hi = [float(x) for x in p.max] if isinstance(p.max, list) else [float(p.max)] * 2
    return Mutable("", "range", start, float(p.step), list(start), hi, p.digits, p.enabled)


class GymParams(Params):
    """Any other keyword is a constructor argument (or an attribute) of the environment."""

    model_config = ConfigDict(extra="allow", frozen=True, arbitrary_types_allowed=True, defer_build=True)
    id: str = Field(description="a registered gymnasium id, e.g. \"LunarLanderContinuous-v3\"")
    horizon: int | None = Field(None, ge=1, le=10_000_000, description="episode length limit (steps)")

    @model_validator(mode="after")
    def _kwargs(self):
        for k, v in (self.model_extra or {}).items():
            if isinstance(v, (str, bool)):
                continue
            if isinstance(v, (list, tuple)) and all(_is_number(x) for x in v):
                continue
            check_param_value(k, v, ranges=True)
        return self


@op("gym", params=GymParams, kinds={"env"}, returns="env", inline=True)
def gym(p: GymParams, ctx=None) -> EnvTemplate:
    """A registered gymnasium environment whose keyword arguments may be mutable parameters."""
    return _template(p.id, p)


class BipedalParams(Params):
    roughness: Input["number", "mutable"] = Field(0.0, description="ground roughness (POET: mutable(0, 0.6, 0, 10))")
    pit_gap: Input["list", "mutable"] = Field(None, description="pit gap interval [lo, hi] in terrain steps, or none")
    stump_height: Input["list", "mutable"] = Field(None, description="stump height interval [lo, hi], or none")
    horizon: int = Field(2000, ge=1, le=100_000, description="episode length limit (steps)")

    @field_validator("roughness")
    @classmethod
    def _rough(cls, v):
        return check_param_value("roughness", v)

    @field_validator("pit_gap", "stump_height")
    @classmethod
    def _interval(cls, v, info):
        return check_param_value(info.field_name, v, ranges=True)


@op("bipedal", params=BipedalParams, kinds={"env"}, returns="env", inline=True)
def bipedal(p: BipedalParams, ctx=None) -> EnvTemplate:
    """POET's BipedalWalker terrain (roughness, pit gaps, stumps) as a gymnasium environment."""
    from expc.runtime.poet.spec import BIPEDAL_ID

    return _template(BIPEDAL_ID, p)


class PointParams(Params):
    target: Input["number", "mutable"] = Field(1.0, description="where the point must go")
    wind: Input["number", "mutable"] = Field(0.0, description="constant force pushing the point")
    horizon: int = Field(30, ge=1, le=100_000, description="episode length (steps)")

    @field_validator("target", "wind")
    @classmethod
    def _value(cls, v, info):
        return check_param_value(info.field_name, v)


@op("point", params=PointParams, kinds={"env"}, returns="env", inline=True)
def point(p: PointParams, ctx=None) -> EnvTemplate:
    """A tiny pure-Python task (push a point mass to a target against wind), for fast tests."""
    from expc.runtime.poet.spec import POINT_ID

    return _template(POINT_ID, p)


def _template(env_id: str, p: Params) -> EnvTemplate:
    """The EnvTemplate of an environment's built params: its mutable(...) arguments (already `Mutable`
    objects) named after their keyword, in order (fields, then gym's extra keywords as written: the
    order of the random draws of a mutation); other non-None arguments fixed."""
    from dataclasses import replace

    from expc.runtime.poet.spec import EnvTemplate, Mutable

    fixed, mutables = {}, []
    given = [(k, getattr(p, k)) for k in type(p).model_fields] + list((p.model_extra or {}).items())
    for name, v in given:
        if name in ("id", "horizon"):
            continue
        if isinstance(v, Mutable):
            mutables.append(replace(v, name=name))
        elif v is not None:
            fixed[name] = v
    return EnvTemplate(env_id, fixed, tuple(mutables), p.horizon)
