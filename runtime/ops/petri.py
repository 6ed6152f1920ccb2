"""The Synthetic Petri Dish (kind `meta`): `petri_dish` meta-learns a few synthetic points on which tiny
networks with an architecture motif rank motifs as the ground truth does; `petri_score` scores a motif
in the trained dish, cheaply enough for a search to screen hundreds.

    param s ~ uniform(0.25, 4, default = 1)
    param o ~ uniform(-2, 2, default = 0)
    eval acc = accuracy(fit(mlp(activation = sigmoid(slope = s, offset = o)), d.train, steps = 300), d.test)
    search truth { objective = maximize(acc), sampler = grid(points = 3), over = [s, o] }
    meta d = petri_dish(motif = sigmoid(slope = s, offset = o), ground_truth = truth)
    eval score = petri_score(d, sigmoid(slope = s, offset = o))
    search screen { objective = minimize(score), sampler = random(seed = 1), trials = 200 }

The dish and its training are in expc.runtime.meta.petri (torch, imported only when they run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from expc.runtime.api import Artifact
from expc.runtime.ops.optim import check_optimizer
from expc.runtime.registry import Deferred, Input, Params, op
from expc.runtime.types import value_type


class DishDir(Artifact):
    """A trained Synthetic Petri Dish: config.json (the dish's shape and inner loop, the symbolic motif,
    the ground truth with the dish's scores) and dish.safetensors (the synthetic points, the initial
    weights)."""

    tag = "dish"
    motifs: int = 0
    meta_loss: float = 0.0
    spearman: float = 0.0


DISH = value_type(
    "dish", "a trained Synthetic Petri Dish (petri_dish): member .spearman, its rank correlation with the "
    "ground truth it was trained on", members={"spearman": "number", "meta_loss": "number"}, kinds={"meta"},
    artifact=DishDir,
    summary=lambda v: f"dish trained on {getattr(v, 'motifs', '?')} motifs, Spearman {getattr(v, 'spearman', 0):+.2f} "
    "on them")


# A dish's settings, shared by petri_dish and the petri(...) strategy (runtime/ops/petri_strategy.py)
DishInputs = Annotated[int, Field(2, ge=1, le=64, description="inputs of the dish network")]
DishHidden = Annotated[int, Field(2, ge=1, le=64, description="hidden units of the dish network (the motif is their "
                                  "activation)")]
DishPoints = Annotated[int, Field(20, ge=1, le=10_000, description="synthetic training points (and as many validation "
                                  "points)")]
DishInnerSteps = Annotated[int, Field(20, ge=1, le=10_000, description="SGD steps of each dish on its training points")]
DishInnerLr = Annotated[float, Field(0.1, gt=0, le=100, description="the dishes' learning rate")]
DishInnerMomentum = Annotated[float, Field(0.0, ge=0, lt=1, description="the dishes' momentum")]
DishOuter = Annotated[Input["optimizer"], Field({"$op": "adam", "lr": 0.03},
                                                description="the optimizer of the synthetic points")]


class PetriDishParams(Params):
    motif: Annotated[Any, Deferred()] = Field(
        description="the motif with its searched params, e.g. sigmoid(slope = s, offset = o): each ground-truth "
        "trial binds them")
    ground_truth: Input["search"] = Field(description="a search whose trials measured the motif in a real network")
    by: str | None = Field(None, min_length=1, description="the measure of the trials to rank by (default: the "
                           "search's objective)")
    better: Literal["auto", "higher", "lower"] = Field(
        "auto", description='whether a higher ground-truth value is better ("auto": from the objective\'s direction)')
    inputs: DishInputs
    hidden: DishHidden
    points: DishPoints
    inner_steps: DishInnerSteps
    inner_lr: DishInnerLr
    inner_momentum: DishInnerMomentum
    outer: DishOuter
    outer_steps: int = Field(300, ge=1, le=10_000_000, description="meta-training steps")
    seed: int = Field(0, description="the synthetic points' and the dish weights' initialization")
    checkpoint_every: int = Field(100, ge=1, description="outer steps between resumable checkpoints")

    @field_validator("motif")
    @classmethod
    def _motif(cls, v):
        from expc.runtime.ops.activations import PARAMETRIC

        if not (isinstance(v, dict) and v.get("$op") in PARAMETRIC):
            raise ValueError(f"expected an activation value with searched params, e.g. sigmoid(slope = s), got {v!r}")
        return v

    @field_validator("outer")
    @classmethod
    def _outer(cls, v):
        return check_optimizer(v)


@op("petri_dish", params=PetriDishParams, kinds={"meta"}, returns="dish", version=1)
def petri_dish(p: PetriDishParams, ctx) -> DishDir:
    """Train a Synthetic Petri Dish (Rawal et al. 2020): for each ground-truth motif (the motif with a
    finished trial's params bound), a tiny network (`inputs` -> `hidden` motif units -> 1) with fixed
    initial weights takes `inner_steps` SGD steps on the synthetic training points and is scored by its
    squared error on the synthetic validation points; the points are meta-learned through those steps
    so that the scores order the motifs as the ground truth does (a pairwise logistic ranking loss).
    Logs meta_loss; checkpoints every `checkpoint_every` steps and resumes with the same result."""
    from expc.runtime.meta.petri import run_petri_dish

    return DishDir(path=Path(ctx.out_dir), **run_petri_dish(p, ctx))


class PetriScoreParams(Params):
    dish: Input["dish"] = Field(description="a trained dish (petri_dish)")
    motif: Input["activation"] = Field(description="the motif to score, e.g. sigmoid(slope = s, offset = o)")


@op("petri_score", params=PetriScoreParams, kinds={"eval"}, returns="metric", version=1)
def petri_score(p: PetriScoreParams, ctx) -> dict:
    """The motif's score in the dish (value): the dish network's validation error after training with the
    motif on the synthetic points. Lower predicts a better motif; a search minimizes it to screen motifs."""
    from expc.runtime.meta.petri import run_petri_score

    return run_petri_score(p, ctx)
