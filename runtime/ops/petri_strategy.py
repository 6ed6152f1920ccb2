"""The Synthetic Petri Dish's multi-round loop as a search strategy (`strategy`, inline): a dish trained on
the motifs evaluated so far screens many motifs, and only its picks are trained for real.

    param s ~ uniform(0.25, 4)
    param o ~ uniform(-2, 2)
    eval acc = accuracy(fit(mlp(activation = sigmoid(slope = s, offset = o)), d.train, steps = 300), d.test)
    search rounds {
      objective = maximize(acc)
      strategy = petri(slope = "s", offset = "o", initial = 6, screen = 200, top = 2)
      generations = 5
    }

The loop is in expc.runtime.search.petri, the dish in expc.runtime.meta.petri."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from expc.runtime.api import OpError
from expc.runtime.ops.optim import check_optimizer
from expc.runtime.ops.petri import (DishHidden, DishInnerLr, DishInnerMomentum, DishInnerSteps, DishInputs,
                                    DishOuter, DishPoints)
from expc.runtime.registry import op
from expc.runtime.search.strategy import StrategyParams


class PetriParams(StrategyParams):
    slope: str | None = Field(None, min_length=1, description="the searched param that is the motif's slope "
                              "(none: the slope is 1)")
    offset: str | None = Field(None, min_length=1, description="the searched param that is the motif's offset "
                               "(none: the offset is 0)")
    initial: int = Field(6, ge=2, le=100_000, description="random motifs of generation 0 (the first ground truth)")
    screen: int = Field(200, ge=1, le=1_000_000, description="random motifs the dish scores each generation")
    top: int = Field(2, ge=1, le=100_000, description="the best-scored of them: the next generation, trained for real")
    inputs: DishInputs
    hidden: DishHidden
    points: DishPoints
    inner_steps: DishInnerSteps
    inner_lr: DishInnerLr
    inner_momentum: DishInnerMomentum
    outer: DishOuter
    outer_steps: int = Field(300, ge=1, le=1_000_000, description="meta-training steps of each generation's dish")

    @field_validator("outer")
    @classmethod
    def _outer(cls, v):
        return check_optimizer(v)

    @model_validator(mode="after")
    def _sizes(self):
        if self.slope is None and self.offset is None:
            raise ValueError('name the searched params of the motif: slope = "s", offset = "o" (one or both)')
        if self.slope is not None and self.slope == self.offset:
            raise ValueError(f"slope and offset are the same param '{self.slope}'")
        if self.top > self.screen:
            raise ValueError(f"top ({self.top}) must not exceed screen ({self.screen})")
        return self

    def start(self, space: dict[str, Any]):
        from expc.runtime.search.petri import Petri

        named = [n for n in (self.slope, self.offset) if n is not None]
        missing = [n for n in named if n not in space]
        extra = sorted(set(space) - set(named))
        if missing or extra:
            what = (f"does not search {', '.join(repr(n) for n in missing)}" if missing else
                    f"also searches {', '.join(repr(n) for n in extra)}, which the motif does not use")
            raise OpError(f"petri: the search's params must be exactly the motif's ({', '.join(named)}); it {what} "
                          f"(it searches {', '.join(sorted(space)) or 'nothing'})", field="strategy",
                          hint="name the motif's params: petri(slope = \"s\", offset = \"o\"), and search only them")
        for n in named:
            if space[n].bounds() is None:
                raise OpError(f"petri: the motif's param '{n}' must be numeric (uniform, loguniform, int), not a "
                              "choice", field="strategy")
        return Petri(self, space)

    def motif(self, bindings: dict[str, Any]) -> dict:
        """The dish's spec of the motif a candidate binds."""
        return {"kind": "sigmoid", "slope": float(bindings[self.slope]) if self.slope else 1.0,
                "offset": float(bindings[self.offset]) if self.offset else 0.0}

    def optimizer(self):
        """The outer optimizer built (a strategy validated directly keeps its JSON form)."""
        o = self.outer
        if isinstance(o, dict):
            from expc.runtime.ops.optim import AdamParams, SgdParams

            cls = {"sgd": SgdParams, "adam": AdamParams}.get(o["$op"])
            if cls is None:
                raise OpError(f"petri: outer = {o['$op']}(...) must be built by the interpreter", field="outer")
            return cls.model_validate({k: v for k, v in o.items() if k != "$op"})
        return o


@op("petri", params=PetriParams, returns="strategy", inline=True)
def petri(p: PetriParams, ctx=None) -> None:
    """The Synthetic Petri Dish's multi-round search (Rawal et al. 2020) over a sigmoid motif whose slope
    and offset are the searched params named by `slope` and `offset` (the search must search exactly
    them). Generation 0 is `initial` random motifs, evaluated for real. After each generation a dish
    (`inputs` -> `hidden` motif units -> 1, as in petri_dish) is meta-trained for `outer_steps` steps on
    every motif evaluated so far (their objectives are its ground truth), scores `screen` random motifs,
    and the `top` best-scored are the next generation. Per generation the search records the dish's
    Spearman on its ground truth (dish_spearman) and meta-loss. Deterministic given `seed` and the
    motifs' results (the dish trains on the CPU)."""
