"""Search: only param-dependent nodes rerun per trial, interrupted studies resume, multi-objective
Pareto sets, grid spaces, local worker processes and Ray tasks. Real tiny GPT-2 models, real Optuna."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from expc.interpreter.executor import Events
from expc.interpreter.session import Session

PROGRAM = """
experiment t {{ seed = 0 }}
param w1 ~ uniform(0, 1, default = 0.5)
param w2 ~ uniform(0, 1, default = 0.5)
param k ~ int(1, 3, default = 1)
data a = split(arithmetic(n = 300, digits = 2, seed = 1), test = 0.2)
data b = split(arithmetic(n = 300, digits = 3, ops = "*", seed = 2), test = 0.2)
model init = gpt2(layers = 1, width = 16, heads = 2, context = 16)
train m1 = finetune(init, a.train, steps = 6, lr = 1e-2, batch = 4)
train m2 = finetune(init, b.train, steps = 6, lr = 1e-2, batch = 4)
merge dem = init + w1 * (m1 - init) + w2 * (m2 - init)
eval ppl = perplexity(dem, a.test)
eval ppl_b = perplexity(dem, b.test)
{search}
"""


def write(tmp: Path, search: str) -> Path:
    f = tmp / "s.exp"
    f.write_text(PROGRAM.format(search=search), encoding="utf-8")
    return f


def run(file: Path, cache: Path, cancel: threading.Event | None = None, events: Events | None = None, **settings):
    s = Session.open(file, cache=cache, settings=settings or None)
    r = s.run(events=events, cancel=cancel)
    return s, r


def node_rows(cache: Path, run_id: int) -> list[tuple]:
    db = sqlite3.connect(str(cache / "runs.sqlite"))
    try:
        return db.execute("SELECT node, key, op, status, bindings, pid FROM node_runs WHERE run_id=? ORDER BY id",
                          (run_id,)).fetchall()
    finally:
        db.close()


def ran(rows, op: str) -> list[tuple]:
    return [r for r in rows if r[2] == op and r[3] == "ran"]


def test_trials_rerun_only_the_nodes_that_depend_on_the_params(tmp_path):
    f = write(tmp_path, "search sweep { objective = minimize(ppl), sampler = random(0), trials = 5 }\n"
                        "eval best = ppl(sweep.best)")
    s, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    rows = node_rows(tmp_path / "store", r.run_id)
    # the fine-tunes ran once, for the whole search
    assert sorted(n for n, *_ in ran(rows, "finetune")) == ["m1", "m2"]
    assert len(ran(rows, "gpt2")) == 1
    # the merge and the evaluation once per trial (+1: the declared nodes with the default weights)
    assert len(ran(rows, "algebra")) == 5 + 1
    trial_evals = [r for r in ran(rows, "perplexity") if r[0] == "ppl" and json.loads(r[4])]
    assert len(trial_evals) == 5
    assert len({r[1] for r in trial_evals}) == 5  # five different keys: five weightings
    # the searched params are the two weights the objective depends on (k is used by nothing)
    sweep = r.results["sweep"]
    assert sweep["params"] == ["w1", "w2"]
    assert all(set(json.loads(r[4])) == {"w1", "w2"} for r in trial_evals)
    assert len(sweep["trials"]) == 5 and all(t["state"] == "complete" for t in sweep["trials"])
    values = [t["value"] for t in sweep["trials"]]
    assert sweep["best_value"] == min(values)
    assert sweep["best"] == sweep["trials"][values.index(min(values))]["params"]
    # ppl(sweep.best) is the best trial's node: cached, the same value
    assert r.results["best"]["value"] == pytest.approx(sweep["best_value"])
    assert len(ran(rows, "perplexity")) == 5 + 2  # trials, and ppl / ppl_b with the defaults: not best
    # the study is kept with the result; the objective is logged per trial
    key = [x for x in rows if x[0] == "sweep"][-1][1]
    assert (s.store.path(key) / "study.sqlite").is_file()
    logged = s.runs.metrics_for(key, "objective")
    assert [v for _, _, v in logged] == pytest.approx(values)


def _cancel_after(n_trials: int, cancel: threading.Event) -> Events:
    """Cancel the run once the objective has been evaluated n_trials times (+1 for the declared node)."""
    seen = {"n": 0}

    def done(pn, status, seconds):
        if pn.display == "ppl" and status == "ran":
            seen["n"] += 1
            if seen["n"] == n_trials + 1:
                cancel.set()

    return Events(node_done=done)


def test_an_interrupted_study_resumes_and_matches_an_uninterrupted_one(tmp_path):
    search = "search sweep { objective = minimize(ppl), sampler = tpe(3, startup = 2), trials = 6 }"
    f = write(tmp_path, search)
    cancel = threading.Event()
    _, r1 = run(f, tmp_path / "store", cancel=cancel, events=_cancel_after(3, cancel))
    assert r1.status == "cancelled"
    first = [json.loads(x[4]) for x in ran(node_rows(tmp_path / "store", r1.run_id), "perplexity") if json.loads(x[4])]
    assert len(first) == 3
    _, r2 = run(f, tmp_path / "store")
    assert r2.status == "ok", r2.failure
    sweep = r2.results["sweep"]
    assert len(sweep["trials"]) == 6
    assert [t["params"] for t in sweep["trials"][:3]] == first
    second = [json.loads(x[4]) for x in ran(node_rows(tmp_path / "store", r2.run_id), "perplexity") if json.loads(x[4])]
    assert len(second) == 3 and not any(b in first for b in second)  # the first 3 were not redone
    # the same seed without the interruption proposes the same six weightings
    _, r3 = run(f, tmp_path / "fresh")
    assert [t["params"] for t in r3.results["sweep"]["trials"]] == [t["params"] for t in sweep["trials"]]
    assert r3.results["sweep"]["best"] == sweep["best"]


def _dominates(a, b) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def test_two_objectives_give_the_pareto_set(tmp_path):
    f = write(tmp_path, "search front { objective = [minimize(ppl), minimize(ppl_b)], sampler = random(1), "
                        "trials = 6 }")
    _, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    res = r.results["front"]
    assert res["directions"] == ["minimize", "minimize"]
    points = {t["number"]: t["values"] for t in res["trials"]}
    pareto = {p["number"] for p in res["pareto"]}
    assert pareto
    for n, v in points.items():
        dominated = any(_dominates(w, v) for m, w in points.items() if m != n)
        assert (n not in pareto) == dominated
    assert res["best"] in [p["params"] for p in res["pareto"]]


def test_grid_over_an_int_param_and_explicit_over(tmp_path):
    # ppl does not depend on k: `over` names it anyway; a grid of 3 points caps 10 trials at 3
    f = write(tmp_path, "search g { objective = minimize(ppl), sampler = grid(), over = [k], trials = 10 }")
    warnings = []
    _, r = run(f, tmp_path / "store", events=Events(warning=warnings.append))
    assert r.status == "ok", r.failure
    assert sorted(t["params"]["k"] for t in r.results["g"]["trials"]) == [1, 2, 3]
    assert any("grid has 3 points" in w.message for w in warnings)


def test_over_a_param_that_is_not_searched_is_an_error(tmp_path):
    f = tmp_path / "e.exp"
    f.write_text(PROGRAM.format(search="param fixed = 2\nsearch g { objective = minimize(ppl), over = [fixed] }"),
                 encoding="utf-8")
    _, r = run(f, tmp_path / "store")
    assert r.status == "failed"
    assert "'fixed' is not a searchable param" in r.failure.message
    line = "search g { objective = minimize(ppl), over = [fixed] }"
    span = r.failure.span  # under the bad item of `over`
    assert (span.line, span.col) == (PROGRAM.count("\n") + 1, line.index("fixed") + 1)


def test_parallel_trials_run_in_local_worker_processes(tmp_path):
    f = write(tmp_path, "search sweep { objective = minimize(ppl), sampler = random(0), trials = 5, parallel = 2 }")
    _, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    rows = node_rows(tmp_path / "store", r.run_id)
    assert len(r.results["sweep"]["trials"]) == 5
    assert len(ran(rows, "finetune")) == 2  # upstream computed once, reused by the workers
    trial_evals = [x for x in ran(rows, "perplexity") if json.loads(x[4])]
    assert len(trial_evals) == 5
    main_pid = [x[5] for x in rows if x[0] == "sweep"][-1]
    worker_pids = {x[5] for x in trial_evals} - {main_pid}
    assert len(worker_pids) >= 1  # trials after the first ran in other processes
    assert sum(1 for x in trial_evals if x[5] != main_pid) == 4


@pytest.mark.slow
def test_ray_backend_runs_trials_as_ray_tasks(tmp_path):
    pytest.importorskip("ray")
    f = write(tmp_path, "search sweep { objective = minimize(ppl), sampler = random(0), trials = 4, parallel = 2 }")
    _, r = run(f, tmp_path / "store", backend="ray")
    assert r.status == "ok", r.failure
    rows = node_rows(tmp_path / "store", r.run_id)
    trial_evals = [x for x in ran(rows, "perplexity") if json.loads(x[4])]
    assert len(trial_evals) == 4
    main_pid = [x[5] for x in rows if x[0] == "sweep"][-1]
    assert sum(1 for x in trial_evals if x[5] != main_pid) == 3
    # the same search on the local backend gives the same trials (nothing else changes)
    _, r2 = run(f, tmp_path / "local")
    assert [t["params"] for t in r2.results["sweep"]["trials"]] == [t["params"] for t in r.results["sweep"]["trials"]]


def test_a_change_upstream_of_the_objective_reruns_the_search(tmp_path):
    f = write(tmp_path, "search sweep { objective = minimize(ppl), sampler = random(0), trials = 2 }")
    _, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure

    def status(*overrides):
        s = Session.open(f, list(overrides), cache=tmp_path / "store")
        return {node: st for node, _, st, _ in s.dry_run()}

    assert status()["sweep"] == "cached"
    changed = status("m2.steps=7")  # the fine-tune feeds the merge the objective evaluates
    assert changed["m2"] == "run" and changed["sweep"] == "run"
    assert status("w1=0.25")["sweep"] == "run"  # a searched param fixed from the command line...
    s = Session.open(f, ["w1=0.25"], cache=tmp_path / "store")
    r2 = s.run()
    assert r2.status == "ok", r2.failure
    assert r2.results["sweep"]["params"] == ["w2"]  # ... is not searched


def test_cmaes_sampler_searches_the_weights(tmp_path):
    f = write(tmp_path, "search c { objective = minimize(ppl), sampler = cmaes(seed = 3), trials = 4 }")
    s, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    res = r.results["c"]
    assert len(res["trials"]) == 4
    assert set(res["best"]) == {"w1", "w2"}
    assert all(0 <= v <= 1 for v in res["best"].values())
    values = [t["value"] for t in res["trials"]]
    assert res["best_value"] == min(values)


PRUNE = """
experiment p {{ seed = 0 }}
param lr ~ loguniform(1e-4, 3, default = 1e-3)
data a = split(arithmetic(n = 300, digits = 2, seed = 1), test = 0.2)
model init = gpt2(layers = 1, width = 16, heads = 2, context = 16)
train m = finetune(init, a.train, steps = 60, lr = lr, batch = 4, checkpoint_every = 20)
eval l = loss(m, a.test)
search s {{ objective = minimize(l), sampler = random(seed = 1), trials = 8, pruner = {pruner} }}
"""


def test_median_pruner_stops_trials_whose_training_loss_lags(tmp_path):
    f = tmp_path / "p.exp"
    f.write_text(PRUNE.format(pruner="median(startup = 2)"))
    s, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    trials = r.results["s"]["trials"]
    assert len(trials) == 8
    pruned = [t for t in trials if t["state"] == "pruned"]
    complete = [t for t in trials if t["state"] == "complete"]
    assert pruned and complete, trials
    # the first two (startup) trials are never pruned
    assert all(t["number"] >= 2 for t in pruned)
    # a pruned trial stopped its fine-tune: the registry records the finetune node as pruned
    rows = node_rows(tmp_path / "store", r.run_id)
    assert len([x for x in rows if x[2] == "finetune" and x[3] == "pruned"]) == len(pruned)
    # the best trial is a completed one
    assert r.results["s"]["best_trial"] in {t["number"] for t in complete}


def test_without_a_pruner_every_trial_completes(tmp_path):
    f = tmp_path / "p.exp"
    f.write_text(PRUNE.format(pruner="none"))
    _, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    assert {t["state"] for t in r.results["s"]["trials"]} == {"complete"}


@pytest.mark.slow
def test_a_search_killed_with_sigkill_resumes_from_its_study(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    search = "search sweep { objective = minimize(ppl), sampler = tpe(3, startup = 2), trials = 8 }"
    f = write(tmp_path, search)
    store = tmp_path / "store"

    def finished_trials() -> int:
        db = store / "work"
        studies = list(db.glob("*/study.sqlite"))
        if not studies:
            return 0
        try:
            con = sqlite3.connect(str(studies[0]), timeout=5)
            n = con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
            con.close()
            return n
        except sqlite3.Error:
            return 0

    proc = subprocess.Popen([sys.executable, "-m", "expc", "run", str(f), "--cache", str(store)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    try:
        while finished_trials() < 3:
            assert proc.poll() is None, "the search finished before it could be killed"
            assert time.time() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = finished_trials()
    assert 3 <= done_before < 8

    _, r = run(f, store)
    assert r.status == "ok", r.failure
    assert len(r.results["sweep"]["trials"]) == 8
    # the rerun evaluated only the missing trials (a trial in flight at the kill may be redone once)
    evaluated = ran(node_rows(store, r.run_id), "perplexity")
    assert len([x for x in evaluated if json.loads(x[4])]) <= 8 - done_before + 1
    # the fine-tunes come from the store
    assert not ran(node_rows(store, r.run_id), "finetune")
