"""From `param NAME ~ DIST` declarations to Optuna distributions, and from sampler values to samplers."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from expc.runtime.api import OpError


def distribution(name: str, dist: dict) -> BaseDistribution:
    kind = dist.get("$op")
    if kind == "uniform":
        return FloatDistribution(float(dist["lo"]), float(dist["hi"]))
    if kind == "loguniform":
        return FloatDistribution(float(dist["lo"]), float(dist["hi"]), log=True)
    if kind == "int":
        return IntDistribution(int(dist["lo"]), int(dist["hi"]), step=int(dist.get("step") or 1))
    if kind == "choice":
        return CategoricalDistribution(list(dist["options"]))
    raise OpError(f"param '{name}' has a distribution ({kind}) the search cannot sample", field="over")


def grid_values(name: str, dist: dict, points: int) -> list[Any]:
    kind = dist.get("$op")
    if kind == "choice":
        return list(dist["options"])
    if kind == "int":
        return list(range(int(dist["lo"]), int(dist["hi"]) + 1, int(dist.get("step") or 1)))
    if kind == "uniform":
        return [float(x) for x in np.linspace(float(dist["lo"]), float(dist["hi"]), points)]
    if kind == "loguniform":
        return [float(x) for x in np.geomspace(float(dist["lo"]), float(dist["hi"]), points)]
    raise OpError(f"param '{name}' has a distribution ({kind}) the grid sampler cannot enumerate", field="sampler")


def derived_seed(seed: int, i: int) -> int:
    """The sampler seed of the i-th finished trial. Reseeding per trial (rather than one RNG for the
    whole study) makes a resumed study draw exactly what an uninterrupted one would have drawn."""
    return (int(seed) * 1_000_003 + i * 7919 + 17) % (2**31 - 1)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler calls study.stop() when the grid is exhausted, which only works inside
    study.optimize(); the search loop asks and tells itself and never runs past the grid's size."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_sampler(spec: dict, i: int, grid: dict[str, list[Any]] | None, multi: bool) -> optuna.samplers.BaseSampler:
    kind = spec["$op"]
    seed = derived_seed(spec.get("seed", 0), i)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=int(spec.get("startup", 10)))
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        # Not the per-trial seed: the grid's order is shuffled with it, and must be the same every trial.
        return _GridSampler(grid or {}, seed=int(spec.get("seed", 0)))
    if kind == "cmaes":
        if multi:
            raise OpError("cmaes() optimizes a single objective", field="sampler", hint="use tpe() or random()")
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise OpError("cmaes() needs the `cmaes` package, which is not installed", field="sampler",
                          hint="pip install cmaes, or use tpe()") from None
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise OpError(f"unknown sampler {kind}", field="sampler")  # pragma: no cover - the params model checks


def make_pruner(spec: dict | None) -> optuna.pruners.BasePruner:
    if spec is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=int(spec.get("startup", 5)),
                                       n_warmup_steps=int(spec.get("warmup", 0)))
