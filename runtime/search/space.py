"""Optuna pieces the samplers declared in expc.runtime.ops.search build on."""

from __future__ import annotations

import optuna


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler calls study.stop() when the grid is exhausted, which only works inside
    study.optimize(); the search loop asks and tells itself and never runs past the grid's size."""

    def after_trial(self, study, trial, state, values) -> None:
        pass
