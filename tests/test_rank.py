"""rank_correlation over a search's trials, against scipy on a hand-made search result, and its
diagnostics; tests/test_gtn_example.py and tests/test_petri_example.py use it on real sweeps."""

from __future__ import annotations

import pytest
from _opctx import OpContext
from scipy import stats

from expc.runtime.api import OpError
from expc.runtime.ops import rank as R


def search(rows, state="complete") -> dict:
    trials = [{"number": i, "params": {"w": w}, "state": state, "value": v, "measures": {"a": a, "b": b}}
              for i, (w, v, a, b) in enumerate(rows)]
    return {"directions": ["minimize"], "objectives": ["v"], "measures": ["a", "b"], "params": ["w"], "trials": trials}


ROWS = [(0.1, 3.0, 0.5, 10.0), (0.2, 1.0, 0.7, 30.0), (0.3, 2.0, 0.6, 20.0), (0.4, 5.0, 0.9, 25.0),
        (0.5, 4.0, 0.8, 40.0)]


def rank(tmp_path, s, **kw):
    return R.rank_correlation.fn(R.RankParams(search=s, **kw), OpContext(tmp_path))


def test_spearman_and_kendall_are_scipys_over_measures_params_and_the_objective(tmp_path):
    s = search(ROWS)
    a, b = [r[2] for r in ROWS], [r[3] for r in ROWS]
    rho = rank(tmp_path, s, x="a", y="b")
    assert rho["value"] == pytest.approx(stats.spearmanr(a, b).statistic) and rho["n"] == 5
    assert rho["p"] == pytest.approx(stats.spearmanr(a, b).pvalue)
    tau = rank(tmp_path, s, x="a", y="b", method="kendall")
    assert tau["value"] == pytest.approx(stats.kendalltau(a, b).statistic)
    assert rank(tmp_path, s, x="w", y="objective")["value"] == pytest.approx(0.6)  # 1 - 6 * 8 / (5 * 24)
    assert rank(tmp_path, s, x="a", y="a")["value"] == pytest.approx(1.0)


def test_trials_missing_a_value_or_unfinished_are_left_out(tmp_path):
    s = search(ROWS)
    s["trials"][0]["measures"]["a"] = None
    s["trials"][1]["state"] = "pruned"
    assert rank(tmp_path, s, x="a", y="b")["n"] == 3


def test_problems_are_reported_at_their_argument(tmp_path):
    with pytest.raises(OpError) as e:
        rank(tmp_path, search(ROWS), x="acc", y="b")
    assert (e.value.field, e.value.message) == ("x", "the search has no measure, param or objective named 'acc' "
                                                "(it has: a, b, w, objective)")
    with pytest.raises(OpError) as e:
        rank(tmp_path, search(ROWS[:2]), x="a", y="b")
    assert e.value.field == "search" and "a rank correlation needs at least 3" in e.value.message
    flat = search([(w, v, 0.5, b) for w, v, _, b in ROWS])
    with pytest.raises(OpError) as e:
        rank(tmp_path, flat, x="a", y="b")
    assert (e.value.field, e.value.message) == ("x", "'a' has the same value in every trial: no ranking to compare")


def test_the_predictor_pruners_forecasts_rank_against_the_objective(tmp_path):
    """`x = "predicted"`: the predictor pruner's forecast kept with each trial (runtime/search/predictor.py);
    a search whose trials have none does not offer the name."""
    s = search(ROWS)
    forecasts = [2.5, 1.5, 2.0, 4.0, 4.5]
    for t, f in zip(s["trials"], forecasts):
        t["predicted"] = f
    r = rank(tmp_path, s, x="predicted", y="objective")
    assert r["value"] == pytest.approx(stats.spearmanr(forecasts, [row[1] for row in ROWS]).statistic)
    with pytest.raises(OpError, match="no measure, param or objective named 'predicted'"):
        rank(tmp_path, search(ROWS), x="predicted", y="objective")
