"""examples/petri_dish.exp at reduced size (150 outer steps, 100 real steps, 5 unseen motifs, 10
screened): it checks, runs, and fills every measurement; effects are asserted only with a wide margin
(the full run's numbers are in README)."""

from __future__ import annotations

import shutil

import pytest

import expc
from conftest import EXAMPLES

SMALL = ["outer_steps=150", "real_steps=100", "unseen.trials=5", "screen.trials=10", "petri_rounds.generations=2"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("petri")
    shutil.copy(EXAMPLES / "petri_dish.exp", root)
    return expc.run(root / "petri_dish.exp", SMALL, cache=root / ".expc")


@pytest.mark.slow
def test_the_dish_learns_its_ground_truth_and_ranks_unseen_motifs(results):
    assert len(results["truth"].data["trials"]) == 9
    # on the 9 motifs it was trained on: measured 0.40 at this size (0.78 in the full run)
    assert results["dish"]["spearman"] > 0.2
    for name in ("rho_dish", "rho_cheap"):
        assert -1 <= results.metric(name) <= 1 and results[name].data["n"] == 5
    assert len(results["screen"].data["trials"]) == 10
    assert 0 <= results.metric("top_pick") <= 1 and 0 <= results.metric("plain_sigmoid") <= 1


@pytest.mark.slow
def test_the_petri_strategy_trains_the_dishs_picks_for_real(results):
    """petri_rounds: 4 random motifs, then the dish's 2 picks: every one trained for real, and the
    second generation's motifs are the picks (not random draws: the dish ranked a ground truth)."""
    rounds = results["petri_rounds"].value
    assert [t["generation"] for t in rounds["trials"]] == [0] * 4 + [1] * 2
    assert all(t["state"] == "complete" and 0 <= t["value"] <= 1 for t in rounds["trials"])
    gens = rounds["generations"]
    assert gens[0]["ground_truth"] == 4 and -1 <= gens[0]["dish_spearman"] <= 1
