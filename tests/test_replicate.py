"""Replicates over seeds and paired comparisons: each replicate binds the experiment seed (and, with
`param`, a param), so every node under it is keyed and cached per seed; in-process and in worker
processes alike. Real runs: a plugin metric that draws from ctx.seed, and tiny real classifiers."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import plugin_seeded
from expc.interpreter.executor import Events
from expc.interpreter.session import Session
from expc.runtime.ops.replicate import plus_minus
from expc.runtime.registry import builtin_modules, collect

SEEDED = """
experiment t {{ seed = 7 }}
eval base = seeded()
eval shifted = seeded(offset = 0.5, slope = 0.1)
{extra}
"""


@pytest.fixture(scope="module")
def registry():
    return collect([*builtin_modules(), plugin_seeded])


def run(tmp_path: Path, text: str, registry=None, store: str = "store", warnings: list | None = None):
    f = tmp_path / "r.exp"
    f.write_text(text, encoding="utf-8")
    s = Session.open(f, cache=tmp_path / store, registry=registry)
    r = s.run(events=Events(warning=warnings.append) if warnings is not None else None)
    assert r.status == "ok", r.failure
    return s, r


def ran(cache: Path, run_id: int, op: str) -> list[tuple]:
    db = sqlite3.connect(str(cache / "runs.sqlite"))
    try:
        return db.execute("SELECT node, key, pid FROM node_runs WHERE run_id=? AND op=? AND status='ran' ORDER BY id",
                          (run_id, op)).fetchall()
    finally:
        db.close()


def test_each_replicate_runs_under_its_own_seed_and_a_rerun_runs_nothing(tmp_path, registry):
    text = SEEDED.format(extra="eval r = replicate(base, seeds = 3)")
    s, r = run(tmp_path, text, registry)
    rep = r.results["r"]
    assert rep["seeds"] == [0, 1, 2]
    assert rep["values"] == [plugin_seeded.draw(k) for k in range(3)]  # ctx.seed was the replicate's seed
    assert len(set(rep["values"])) == 3
    assert r.results["base"]["value"] == plugin_seeded.draw(7)  # outside the replicate: the experiment's seed
    # three keys, none of them the declared node's (seed 7)
    keys = {k for node, k, _ in ran(tmp_path / "store", r.run_id, "seeded") if node == "base"}
    assert len(keys) == 4 and s.executor(r.run_id).plan("base").key in keys
    # value = mean, sd with n - 1, the 95% t-interval, against numpy / scipy
    xs = np.array(rep["values"])
    assert rep["value"] == pytest.approx(xs.mean())
    assert rep["sd"] == pytest.approx(xs.std(ddof=1))
    assert rep["ci"] == pytest.approx(list(stats.t.interval(0.95, 2, loc=xs.mean(), scale=stats.sem(xs))))
    assert rep["n"] == 3
    # a rerun takes everything from the store
    s2, r2 = run(tmp_path, text, registry)
    assert r2.ran == [] and r2.results["r"] == rep
    # one more seed runs the metric once more: seeds 0..2 are cached under their own keys
    _, r3 = run(tmp_path, text.replace("seeds = 3", "seeds = 4"), registry)
    assert [node for node, _, _ in ran(tmp_path / "store", r3.run_id, "seeded")] == ["base"]
    assert r3.results["r"]["values"][:3] == rep["values"]


def test_compare_gives_the_paired_difference_with_its_interval(tmp_path, registry):
    extra = ("eval a = replicate(base, seeds = 4)\neval b = replicate(shifted, seeds = 4)\n"
             "eval d = compare(a, b)")
    _, r = run(tmp_path, SEEDED.format(extra=extra), registry)
    d = r.results["d"]
    diffs = [0.5 + 0.1 * k for k in range(4)]  # b - a per seed: the same draw cancels
    assert d["values"] == pytest.approx(diffs)
    assert d["value"] == pytest.approx(np.mean(diffs))
    t = stats.ttest_rel(r.results["b"]["values"], r.results["a"]["values"])
    assert d["p"] == pytest.approx(t.pvalue)
    lo, hi = stats.t.interval(0.95, 3, loc=np.mean(diffs), scale=stats.sem(diffs))
    assert d["ci"] == pytest.approx([lo, hi])
    assert d["a"] == pytest.approx(r.results["a"]["value"]) and d["b"] == pytest.approx(r.results["b"]["value"])
    assert d["seeds"] == [0, 1, 2, 3]


def test_compare_refuses_replicates_of_different_seeds(tmp_path, registry):
    extra = "eval a = replicate(base, seeds = 3)\neval b = replicate(shifted, seeds = 4)\neval d = compare(a, b)"
    f = tmp_path / "r.exp"
    f.write_text(SEEDED.format(extra=extra), encoding="utf-8")
    r = Session.open(f, cache=tmp_path / "store", registry=registry).run()
    assert r.status == "failed"
    assert "a has seeds 0..2 and b 0..3" in r.failure.message
    assert (r.failure.span.line, r.failure.span.col) == (7, len("eval d = compare(a, ") + 1)


def test_the_report_prints_mean_plus_minus_sd(tmp_path, registry):
    extra = ("eval a = replicate(base, seeds = 3)\neval b = replicate(shifted, seeds = 3)\n"
             "report t { table = {a: a, b: b, \"b - a\": compare(a, b), plain: base} }")
    _, r = run(tmp_path, SEEDED.format(extra=extra), registry)
    rows = {row[0]: row[1] for row in r.results["t"]["table"]["rows"]}
    a = r.results["a"]
    sd = np.std(a["values"], ddof=1)
    assert 0.355 < sd < 0.95 and rows["a"] == f"{a['value']:.1f} ± {sd:.1f} (n=3)"  # sd 0.45: one digit
    # b - a = 0.5, 0.6, 0.7: mean 0.6, 95% CI 0.6 ± 4.303 * 0.1 / sqrt(3) (half-width 0.248: two digits)
    assert rows["b - a"] == "+0.60 [+0.35, +0.85] (n=3)"
    assert rows["plain"] == f"{r.results['base']['value']:.4g}"
    # the rule: one significant digit of the sd (two when its first digits are below 355), the mean alike
    assert plus_minus({"value": 0.91234, "sd": 0.0081, "n": 5}) == "0.912 ± 0.008 (n=5)"
    assert plus_minus({"value": 0.91234, "sd": 0.0123, "n": 5}) == "0.912 ± 0.012 (n=5)"
    assert plus_minus({"value": 12.34, "sd": 0.0, "n": 2}) == "12.34 ± 0 (n=2)"
    assert plus_minus({"value": 0.1, "n": 3}) is None  # not a replicate


# ------------------------------------------------------------------------ real classifiers, worker processes

FIT = """
experiment t {{ seed = 0 }}
param seed = 0
data pts = split(blobs(n = 90, classes = 3, spread = 4, seed = 0), test = 0.3, seed = 0)
train clf = fit(mlp(hidden = [4]), pts.train, optimizer = sgd(lr = 0.05), steps = 6, seed = seed)
eval acc = calibration(clf, pts.test)
eval r = replicate(acc, seeds = 3, param = seed{parallel})
eval same = replicate(acc, seeds = 2)
"""


def test_replicates_in_worker_processes_equal_those_in_process(tmp_path):
    warnings: list = []
    _, here = run(tmp_path, FIT.format(parallel=""), store="here", warnings=warnings)
    _, there = run(tmp_path, FIT.format(parallel=", parallel = 2"), store="there")
    values = here.results["r"]["values"]
    assert len(set(values)) == 3  # fit(seed = seed): each replicate trains another network
    assert there.results["r"]["values"] == values
    assert there.results["r"]["value"] == here.results["r"]["value"]
    # seed 0 is the declared node; seeds 1 and 2 ran in worker processes (and `same`'s seed 1 here)
    rows = ran(tmp_path / "there", there.run_id, "fit")
    main = {pid for node, _, pid in ran(tmp_path / "there", there.run_id, "replicate")}
    assert len(rows) == 4 and sum(1 for _, _, pid in rows if pid not in main) == 2
    # without `param` too: the data and the training fold the experiment seed into their own seeds
    same = here.results["same"]
    assert len(set(same["values"])) == 2 and same["sd"] > 0
    assert not any("gave the same value" in w.message for w in warnings)


def test_auc_integrates_the_logged_block_means(tmp_path):
    text = FIT.format(parallel="").replace("steps = 6", "steps = 25") + "eval area = auc(clf)\n"
    s, r = run(tmp_path, text)
    area = r.results["area"]
    logged = {step: v for _, step, v in s.runs.metrics_for(s.executor(r.run_id).plan("clf").key, "loss")}
    assert sorted(logged) == [10, 20, 25]  # fit logs the mean loss of each block of 10 steps, and the rest
    assert area["value"] == pytest.approx((10 * logged[10] + 10 * logged[20] + 5 * logged[25]) / 25)
    assert area["steps"] == 25 and area["final"] == logged[25]
    # a merge logged no curve: said at the model
    f = tmp_path / "b.exp"
    f.write_text(text + 'merge hot = where("head.*", 2 * clf, clf)\neval none = auc(hot)\n', encoding="utf-8")
    r2 = Session.open(f, cache=tmp_path / "store").run()
    assert r2.status == "failed" and r2.failure.message.startswith("none: auc: the run registry has no 'loss' curve")
    assert (r2.failure.span.line, r2.failure.span.col) == (text.count("\n") + 2, len("eval none = auc(") + 1)


def test_a_replicate_nested_in_a_search_sees_the_trials_params(tmp_path, registry):
    # each trial evaluates the replicate under its own w; the replicate maps c under those params
    extra = ("param w ~ uniform(0, 1, default = 0.5)\neval c = seeded(offset = w)\n"
             "eval r = replicate(c, seeds = 2)\nsearch s { objective = maximize(r), over = [w], trials = 3 }")
    s, r = run(tmp_path, SEEDED.format(extra=extra), registry)
    trials = r.results["s"]["trials"]
    assert len({t["params"]["w"] for t in trials}) == 3
    for t in trials:
        w = t["params"]["w"]
        assert t["value"] == pytest.approx((plugin_seeded.draw(0, w) + plugin_seeded.draw(1, w)) / 2)
