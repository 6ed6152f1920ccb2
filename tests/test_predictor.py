"""predictor(...): the learning-curve LSTM prunes a candidate whose curve clearly lags, keeps a good
one, waits for `warmup` finished candidates and for `observe` steps, and ranks candidates well."""

from __future__ import annotations

import math
import random

import optuna
import pytest

from expc.runtime.ops.predictor import PredictorParams
from expc.runtime.search.predictor import PREDICTED, outside_best, positions, prediction_ranks, value_at

STEPS = range(10, 201, 10)


def curve(quality: float, rng: random.Random) -> dict[int, float]:
    """A loss curve that settles at 2 + quality (lower is better), with noise."""
    return {s: 2.0 + quality + 3.0 * math.exp(-s / 40) + rng.gauss(0, 0.03) for s in STEPS}


def study_with(finished: int, seed: int = 0, **params) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    p = PredictorParams(**{"observe": 100, "warmup": 10, "keep": 0.5, **params})
    study = optuna.create_study(direction="minimize", pruner=p.make())
    rng = random.Random(seed)
    for _ in range(finished):
        q = rng.uniform(0, 1)
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=math.exp(2 + q),
                                                  intermediate_values=curve(q, rng)))
    return study


def running(study: optuna.Study, quality: float, until: int) -> list[tuple[int, bool]]:
    """Report a candidate's curve up to step `until`; (step, should_prune) after each report."""
    trial = study.ask()
    out = []
    for s, v in curve(quality, random.Random(99)).items():
        if s > until:
            break
        trial.report(v, s)
        out.append((s, trial.should_prune()))
    return out


def test_a_clearly_lagging_candidate_is_stopped_at_observe_and_a_good_one_is_not():
    study = study_with(10)
    lagging = running(study, 1.6, 200)
    assert [s for s, pruned in lagging if pruned][0] == 100  # not one step before observe
    assert not any(pruned for s, pruned in lagging if s < 100)
    assert not any(pruned for _, pruned in running(study, 0.05, 200))


def test_never_before_warmup_finished_candidates():
    study = study_with(9)
    assert not any(pruned for _, pruned in running(study, 3.0, 200))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=math.exp(2.5),
                                              intermediate_values=curve(0.5, random.Random(5))))
    assert any(pruned for _, pruned in running(study, 3.0, 200))


def test_pruned_and_failed_candidates_do_not_count_as_finished():
    study = study_with(9)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED,
                                              intermediate_values=curve(0.5, random.Random(5))))
    assert not any(pruned for _, pruned in running(study, 3.0, 200))


@pytest.mark.slow
def test_predictions_rank_the_finished_candidates():
    study = study_with(12, seed=1, warmup=6)
    rng = random.Random(3)
    for _ in range(10):  # candidates of every quality; those predicted inside the best half finish
        q = rng.uniform(0, 1)
        trial = study.ask()
        pruned = False
        for s, v in curve(q, rng).items():
            trial.report(v, s)
            if trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, math.exp(2 + q))
    states = [t.state for t in study.trials[12:]]
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states
    assert all(PREDICTED in t.system_attrs for t in study.trials[12:])
    ranks = prediction_ranks(study)
    assert ranks["n"] >= 3 and ranks["spearman"] > 0.8


def test_the_keep_share_is_a_share_of_ranks():
    assert positions([4.0, 1.0, 3.0, 2.0], minimize=True) == [1.0, 0.0, 2 / 3, 1 / 3]
    assert positions([4.0, 1.0, 3.0, 2.0], minimize=False) == [0.0, 1.0, 1 / 3, 2 / 3]
    # of 4 finished, the best half is ranks 0 and 1 (positions 0 and 1/3)
    assert not outside_best(1 / 3, 4, 0.5) and outside_best(0.34, 4, 0.5)
    assert not outside_best(5.0, 4, 1.0)
    # a prediction is kept on the objective's scale, between the finished values
    assert value_at(0.5, [10.0, 1e30, 20.0], minimize=True) == 20.0
    assert value_at(0.25, [10.0, 20.0, 1e30], minimize=True) == 15.0


def test_its_fields_are_checked():
    with pytest.raises(ValueError, match="keep"):
        PredictorParams(keep=0)
    with pytest.raises(ValueError, match="warmup"):
        PredictorParams(warmup=0)
