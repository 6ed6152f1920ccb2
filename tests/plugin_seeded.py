"""A registry module for tests of replicates: a metric that draws from the experiment seed its context
gives it (ctx.seed), as an operator that derives its randomness from the experiment seed does."""

from __future__ import annotations

import random

from pydantic import Field

from expc.runtime.registry import Params, op


class SeededParams(Params):
    offset: float = Field(0.0, description="added to the draw")
    slope: float = Field(0.0, description="times the seed, added to the draw")


def draw(seed: int, offset: float = 0.0, slope: float = 0.0) -> float:
    """What `seeded` gives under experiment seed `seed` (tests compute the expected values with it)."""
    return offset + slope * seed + random.Random(seed).random()


@op("seeded", params=SeededParams, kinds={"eval"}, returns="metric")
def seeded(p: SeededParams, ctx) -> dict:
    """A uniform draw from the experiment seed, plus offset + slope * seed."""
    return {"value": draw(ctx.seed, p.offset, p.slope), "seed": ctx.seed}
