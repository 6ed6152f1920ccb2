"""examples/lstm_evolution.exp at reduced size (20 training steps, 4 candidates, 2 generations, the
predictor after 2 finished candidates at step 10): it checks, runs the evolution with novelty and the
predictor pruner, and fills its report. The full run's numbers are in the helper report / README."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

import expc
from conftest import EXAMPLES

SMALL = ["steps=20", "final_steps=20", "population=4", "generations=2", "observe=10", "warmup=2"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("lstm_evolution")
    shutil.copy(EXAMPLES / "lstm_evolution.exp", root)
    shutil.copytree(EXAMPLES / "data", root / "data")
    return expc.run(root / "lstm_evolution.exp", SMALL, cache=root / ".expc")


@pytest.mark.slow
def test_the_evolution_runs_and_its_best_is_a_cell(results):
    evo = results["evo"].value
    assert [g["generation"] for g in evo["generations"]] == [0, 1]
    best = evo["best"]["cell"]
    assert best["$op"] == "cell" and set(best["trees"]) == {"h", "c"}
    # the LSTM (the param's default) is candidate 0 of generation 0, and elites carry over
    assert evo["best_value"] <= results.metric("ppl")
    assert all("profile" in (t.get("measures") or {}) for t in evo["trials"] if t["state"] == "complete")
    assert any(line.startswith("h' = ") for line in evo["described"]["cell"])
    rows = results["results"].value["table"]["rows"]
    assert [r[0] for r in rows] == ["lstm", "gru", "evolved"]


@pytest.mark.slow
def test_the_predictor_predicts_once_warmup_candidates_finished(results):
    study = results["evo"].dir / "study.sqlite"
    con = sqlite3.connect(str(study))
    try:
        predicted = dict(con.execute("select trial_id, value_json from trial_system_attributes "
                                     "where key = 'expc_predicted'").fetchall())
        states = dict(con.execute("select trial_id, state from trials").fetchall())
    finally:
        con.close()
    finished_first = sorted(t for t, s in states.items() if s == "COMPLETE")[:2]
    assert predicted and not set(finished_first) & set(predicted)  # nothing predicted before warmup
    assert all(isinstance(json.loads(v), float) for v in predicted.values())
    # the result's trials carry the forecasts, so rank_correlation(evo, x = "predicted", ...) can use them
    rows = [t for t in results["evo"].value["trials"] if "predicted" in t]
    assert len(rows) == len(predicted) and all(isinstance(t["predicted"], float) for t in rows)
