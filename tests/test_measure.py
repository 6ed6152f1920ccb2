"""Searches that record measures: a sweep (no objective) records every measure at every point, and a
search with an objective records them beside it. A tiny real classifier whose logits a searched
temperature scales over 12 decades (the attacker-temperature curve's shape): its accuracy cannot
change, and its calibration error has known limits at both ends."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from expc.interpreter.compiler import compile
from expc.interpreter.session import Session
from expc.spec.diagnostics import CompileError

PROGRAM = """experiment t {{ seed = 0 }}
param lr ~ loguniform(1e-3, 0.1, default = 0.03)
param t ~ loguniform(1e-6, 1e6, default = 1.0)
data pts = split(blobs(n = 90, classes = 3, spread = 4, seed = 0), test = 0.3, seed = 0)
train clf = fit(mlp(hidden = [8]), pts.train, optimizer = adam(lr = lr), steps = 30)
merge hot = where("head.*", t * clf, clf)
eval acc = accuracy(hot, pts.test)
eval ece = calibration(hot, pts.test, bins = 10)
{search}
"""


def run(tmp_path: Path, search: str, store: str = "store"):
    f = tmp_path / "m.exp"
    f.write_text(PROGRAM.format(search=search), encoding="utf-8")
    s = Session.open(f, cache=tmp_path / store)
    r = s.run()
    assert r.status == "ok", r.failure
    return s, r


def ran(cache: Path, run_id: int, op: str) -> list[tuple]:
    db = sqlite3.connect(str(cache / "runs.sqlite"))
    try:
        return db.execute("SELECT node, key, bindings FROM node_runs WHERE run_id=? AND op=? AND status='ran'",
                          (run_id, op)).fetchall()
    finally:
        db.close()


def test_a_sweep_records_every_measure_at_every_point(tmp_path):
    s, r = run(tmp_path, "search sweep { measure = [acc, ece], sampler = grid(points = 7), over = [t], trials = 7 }\n"
                         "report plots { plot = [response(sweep), history(sweep)] }")
    sweep = r.results["sweep"]
    trials = sweep["trials"]
    # 7 points, log-spaced over 12 decades, each with both measures
    assert sorted(tr["params"]["t"] for tr in trials) == pytest.approx([10.0 ** k for k in range(-6, 7, 2)])
    assert all(tr["state"] == "complete" and set(tr["measures"]) == {"acc", "ece"} for tr in trials)
    assert sweep["measures"] == ["acc", "ece"] and sweep["log"] == ["t"] and sweep["objectives"] == []
    assert sweep["best"] is None and sweep["best_value"] is None and "value" not in trials[0]
    by_t = {tr["params"]["t"]: tr["measures"] for tr in sorted(trials, key=lambda x: x["params"]["t"])}
    lo, one, hi = by_t[min(by_t)], by_t[1.0], by_t[max(by_t)]
    assert 0.8 < one["acc"] < 1  # a classifier that learned something, and makes mistakes
    # scaling logits by t > 0 keeps every argmax; the measure at t = 1 is the declared node's value
    assert {round(m["acc"], 12) for m in by_t.values()} == {round(r.results["acc"]["value"], 12)}
    assert one["ece"] == pytest.approx(r.results["ece"]["value"])
    # t -> 0: every confidence is 1/3 (one bin): ECE = |acc - 1/3|; t -> inf: confidence 1: ECE = 1 - acc
    assert lo["ece"] == pytest.approx(abs(lo["acc"] - 1 / 3), abs=1e-5)
    assert hi["ece"] == pytest.approx(1 - hi["acc"], abs=1e-5)
    # the classifier trained once; the merge and both measures once per point (t = 1.0: the declared nodes;
    # a default written `1` would key apart from the grid's 1.0)
    rows = ran(tmp_path / "store", r.run_id, "fit")
    assert len(rows) == 1
    assert len(ran(tmp_path / "store", r.run_id, "algebra")) == 7
    assert len(ran(tmp_path / "store", r.run_id, "calibration")) == 7
    key = s.executor(r.run_id).plan("sweep").key
    logged = {step: v for _, step, v in s.runs.metrics_for(key, "measure.ece")}
    assert logged == {tr["number"]: pytest.approx(tr["measures"]["ece"]) for tr in trials}
    assert r.results["sweep"] and "7 trials measuring acc, ece" in s.registry.types.summary("search", sweep)
    # one panel per measure against t, on a log axis
    files = r.results["plots"]["plots"]
    assert files == ["00_response_sweep.png", "01_history_sweep.png"]
    for name in files:
        png = s.store.path(s.executor(r.run_id).plan("plots").key) / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_an_objective_and_measures_together(tmp_path):
    s, r = run(tmp_path, "search s { objective = minimize(ece), measure = {accuracy: acc}, sampler = random(0), "
                         "over = [lr], trials = 3 }\neval at_best = acc(s.best)")
    res = r.results["s"]
    assert res["objectives"] == ["ece"] and res["measures"] == ["accuracy"]
    assert all(set(tr) >= {"value", "measures"} and set(tr["measures"]) == {"accuracy"} for tr in res["trials"])
    values = [tr["value"] for tr in res["trials"]]
    best = res["trials"][values.index(min(values))]
    assert res["best_value"] == min(values) and res["best"] == best["params"]
    # the measure is the node under the trial's params: re-instantiated at the best, it is cached and equal
    assert r.results["at_best"]["value"] == best["measures"]["accuracy"]
    # each trial trained its own classifier (lr is upstream of both) and the measure reused it; both the
    # objective and the measure ran once per trial (+1: the declared nodes); at_best came from the store
    assert len(ran(tmp_path / "store", r.run_id, "fit")) == 3 + 1
    measured = [json.loads(b) for _, _, b in ran(tmp_path / "store", r.run_id, "accuracy") if json.loads(b or "{}")]
    assert sorted(b["lr"] for b in measured) == sorted(tr["params"]["lr"] for tr in res["trials"])
    assert len(ran(tmp_path / "store", r.run_id, "calibration")) == 3 + 1


@pytest.mark.parametrize("search, message, col", [
    ("search s { measure = [acc], trials = 3 }",
     "a search without an objective (a sweep of its measures) must name its params: over = [p1, p2]", 1),
    ("search s { trials = 3 }", "a search needs objective = minimize(EVAL) (or maximize), or measure", 1),
    ("search s { measure = {a: 3}, over = [t] }", "measure 'a' must be an evaluation (a node such as a metric)",
     len("search s { measure = ") + 1),
])
def test_a_search_without_an_objective_is_checked(tmp_path, search, message, col):
    f = tmp_path / "e.exp"
    f.write_text(PROGRAM.format(search=search), encoding="utf-8")
    with pytest.raises(CompileError) as e:
        compile(f)
    (d,) = [d for d in e.value.diagnostics if d.severity == "error"]  # and W301: t scales a merge by 1e6
    assert d.code == "E401" and message in d.message
    assert (d.span.line, d.span.col) == (PROGRAM.count("\n"), col)  # the {search} line
