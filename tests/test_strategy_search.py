"""Strategy searches end to end: `param arch ~ mlps(...)`, `fit(arch, ...)`, accuracy, an evolution over
generations; what the store keeps, the result (best, trials with generations, per-generation facts),
mean/sd, the plots, genome params under Optuna samplers and overrides, the diagnostics, and a resume
after kill -9 that equals an uninterrupted run. Real training on digits (small)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import expc_bin, write
from expc.interpreter.session import Session
from expc.runtime.ops.genomes import MlpsParams

PROGRAM = """\
experiment t {{ seed = 0 }}
param arch ~ mlps(depth = [1, 2], width = [8, 32])
data d = split(digits(), test = 0.3)
train clf = fit(arch, d.train, steps = {steps})
eval acc = accuracy(clf, d.test)
{search}
"""

EVOLUTION = "search s { objective = maximize(acc), strategy = evolution(population = 6, seed = 1), generations = 3%s }"
SPACE = MlpsParams(depth=[1, 2], width=[8, 32])


def program(tmp: Path, search: str, steps: int = 30, name: str = "s.exp") -> Path:
    return write(tmp / name, PROGRAM.format(steps=steps, search=search))


def run(file: Path, cache: Path, overrides: list[str] | None = None):
    s = Session.open(file, cache=cache, overrides=overrides) if overrides else Session.open(file, cache=cache)
    return s, s.run()


def fit_keys(cache: Path, run_id: int) -> set[str]:
    db = sqlite3.connect(str(cache / "runs.sqlite"))
    try:
        return {k for (k,) in db.execute("SELECT key FROM node_runs WHERE run_id=? AND op='fit' AND status='ran'",
                                         (run_id,))}
    finally:
        db.close()


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evo")
    f = program(tmp, EVOLUTION % "" + "\ntrain again = fit(s.best.arch, d.train, steps = 30)\n"
                "eval at_best = acc(s.best)\neval m = mean(s)\neval v = sd(s, generation = -1)\n"
                "report r { plot = [history(s), species(s), diversity(s)] }")
    s, r = run(f, tmp / "store")
    assert r.status == "ok", r.failure
    return s, r, tmp


def test_an_evolution_runs_generations_of_genomes(evolved):
    s, r, _ = evolved
    res = r.results["s"]
    trials = res["trials"]
    # 6 candidates, then 4 children a generation (2 elites are carried, not evaluated again)
    assert [t["generation"] for t in trials] == [0] * 6 + [1] * 4 + [2] * 4
    assert all(SPACE.contains(t["params"]["arch"]) is None for t in trials)
    assert trials[0]["params"]["arch"] == SPACE.default_genome()
    values = [t["value"] for t in trials]
    assert res["best_value"] == max(values) and res["best"] == trials[values.index(max(values))]["params"]
    gens = res["generations"]
    assert [g["generation"] for g in gens] == [0, 1, 2] and all(g["size"] == 6 for g in gens)
    best = [g["best"] for g in gens]
    assert best == sorted(best) and best[-1] == res["best_value"]  # elitism: the best is never lost
    assert gens[0]["mean"] == pytest.approx(sum(values[:6]) / 6)
    assert res["described"]["arch"][0].startswith("mlp: inputs -> ")
    # the best genome is usable as an architecture and as bindings, and its node is the trial's
    assert r.results["at_best"]["value"] == pytest.approx(res["best_value"])
    assert r.results["again"] is not None


def test_mean_and_sd_of_the_candidates(evolved):
    _, r, _ = evolved
    trials = r.results["s"]["trials"]
    values = [t["value"] for t in trials]
    assert r.results["m"]["value"] == pytest.approx(sum(values) / len(values)) and r.results["m"]["n"] == 14
    last = [t["value"] for t in trials if t["generation"] == 2]
    mu = sum(last) / 4
    assert r.results["v"]["value"] == pytest.approx((sum((x - mu) ** 2 for x in last) / 3) ** 0.5)


def test_plots_of_generations(evolved):
    s, r, _ = evolved
    plots = r.results["r"]["plots"]
    assert [Path(p).name for p in plots] == ["00_history_s.png", "01_species_s.png", "02_diversity_s.png"]


def test_keep_best_forgets_the_other_candidates_networks(evolved, tmp_path):
    s, r, tmp = evolved
    ran = fit_keys(tmp / "store", r.run_id)
    kept = {k for k in ran if s.store.has(k)}
    # a candidate equal to an earlier one copies its result; the first candidate is the declared clf
    evaluated = sum(1 for t in r.results["s"]["trials"] if "copy_of" not in t)
    assert len(ran) == evaluated + 1  # + `again`
    # kept: the declared clf (the default genome), the best candidate's network, and `again`
    assert len(kept) == 3, (len(ran), len(kept))
    f = program(tmp_path, EVOLUTION % ', keep = "all"')
    s2, r2 = run(f, tmp_path / "store")
    assert r2.status == "ok", r2.failure
    ran2 = fit_keys(tmp_path / "store", r2.run_id)
    assert all(s2.store.has(k) for k in ran2) and len(ran2) == evaluated
    # the same seed gives the same candidates, whatever is kept
    assert [t["params"] for t in r2.results["s"]["trials"]] == [t["params"] for t in r.results["s"]["trials"]]


def test_a_sampler_draws_genomes_through_a_seed(tmp_path):
    f = program(tmp_path, "search s { objective = maximize(acc), sampler = random(0), trials = 3 }\n"
                          "eval at_best = acc(s.best)", steps=10)
    _, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    trials = r.results["s"]["trials"]
    assert len(trials) == 3 and all(SPACE.contains(t["params"]["arch"]) is None for t in trials)
    assert r.results["at_best"]["value"] == pytest.approx(r.results["s"]["best_value"])


def test_a_genome_override_fixes_the_param(tmp_path):
    f = program(tmp_path, "", steps=10)
    genome = {"$op": "mlp", "hidden": [8, 8], "activation": "tanh"}
    s, r = run(f, tmp_path / "store", [f"arch={json.dumps(genome)}"])
    assert r.status == "ok", r.failure
    assert r.results["clf"].n_params == 64 * 8 + 8 + 8 * 8 + 8 + 8 * 10 + 10


def test_novelty_needs_a_measure_to_compare(tmp_path):
    f = program(tmp_path, "search s { objective = maximize(acc), generations = 2,\n"
                          '  strategy = evolution(population = 4, novelty = novelty(behaviour = "outputs")) }',
                steps=5)
    _, r = run(f, tmp_path / "store")
    assert r.status == "failed"
    assert r.failure.message == "s: the novelty behaviour 'outputs' is not one of the search's measures"
    assert (r.failure.span.line, r.failure.span.col) == (7, 14)


def test_novelty_on_a_measure(tmp_path):
    f = program(tmp_path, "search s { objective = maximize(acc), generations = 2, measure = {a: acc},\n"
                          '  strategy = evolution(population = 4, novelty = novelty(behaviour = "a", k = 2)) }',
                steps=5)
    _, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    res = r.results["s"]
    assert all(t["behaviour"] == [t["value"]] for t in res["trials"] if "copy_of" not in t)
    assert all(g["novelty"] is not None and g["archive"] > 0 for g in res["generations"])


def test_diagnostics_of_strategy_searches(tmp_path):
    from expc.interpreter.compiler import compile
    from expc.spec.diagnostics import CompileError

    f = program(tmp_path, "search a { objective = maximize(acc), strategy = evolution(), sampler = random() }\n"
                          "search b { objective = maximize(acc), strategy = grid() }\n"
                          "search c { objective = maximize(acc), strategy = evolution(), trials = 3 }\n"
                          "search e { objective = maximize(acc), generations = 3 }\n"
                          "search g { objective = maximize(acc), strategy = evolution(population = 4, elite = 4) }\n")
    with pytest.raises(CompileError) as info:
        compile(f)
    got = [(d.code, d.span.line, d.span.col, d.message) for d in info.value.diagnostics]
    assert got == [
        ("E401", 6, 73, "invalid value for 'sampler' of search(): Value error, give sampler = ... or strategy = ..., "
                        "not both (a strategy proposes the candidates itself)"),
        ("E301", 7, 50, "argument 'strategy' of search() expects strategy, got sampler"),
        ("E401", 8, 72, "invalid value for 'trials' of search(): Value error, a strategy's budget is generations = N "
                        "(each evaluates a population), not trials (got 3)"),
        ("E401", 9, 53, "invalid value for 'generations' of search(): Value error, generations is a setting of a "
                        "strategy search: add strategy = evolution(...) or remove it (got 3)"),
        ("E401", 10, 50, "invalid value of evolution(): Value error, elite (4) must be smaller than the population "
                         "(4)"),
    ]


def test_a_grid_over_an_architecture_is_an_error_at_the_sampler(tmp_path):
    f = program(tmp_path, "search s { objective = maximize(acc), sampler = grid() }", steps=5)
    _, r = run(f, tmp_path / "store")
    assert r.status == "failed"
    assert "an architecture space has no grid" in r.failure.message
    assert (r.failure.span.line, r.failure.span.col) == (6, 49)


def _finished(store: Path) -> int:
    studies = list((store / "work").glob("*/study.sqlite"))
    if not studies:
        return 0
    try:
        con = sqlite3.connect(str(studies[0]), timeout=5)
        n = con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_resume_after_kill_9_equals_an_uninterrupted_run(tmp_path, subprocess_env):
    search = "search s { objective = maximize(acc), strategy = evolution(population = 4, elite = 1, seed = 2), " \
             "generations = 4 }"
    f = program(tmp_path, search, steps=150)
    store = tmp_path / "store"
    proc = subprocess.Popen([*expc_bin(), "run", str(f), "--cache", str(store)], cwd=tmp_path, env=subprocess_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while _finished(store) < 6:  # past the first generation (4) and into the second
            assert proc.poll() is None, "the search finished before it could be killed"
            assert time.time() < deadline
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = _finished(store)
    assert 6 <= done_before < 4 + 3 * 3
    s, r = run(f, store)
    assert r.status == "ok", r.failure
    resumed = r.results["s"]
    # only what was missing ran (a candidate in flight at the kill runs again)
    assert len(fit_keys(store, r.run_id)) <= 4 + 3 * 3 - done_before + 1
    _, fresh = run(program(tmp_path, search, steps=150, name="fresh.exp"), tmp_path / "fresh")
    assert fresh.status == "ok", fresh.failure
    strip = lambda res: [(t["generation"], t["params"], t["value"]) for t in res["trials"]]  # noqa: E731
    assert strip(resumed) == strip(fresh.results["s"])
    assert resumed["generations"] == fresh.results["s"]["generations"]
    assert resumed["best"] == fresh.results["s"]["best"]


@pytest.mark.slow
def test_a_pruner_stops_candidates_of_a_strategy(tmp_path):
    f = program(tmp_path, "search s { objective = maximize(acc), strategy = evolution(population = 4, elite = 1), "
                          'generations = 3, pruner = median(startup = 2, metric = "loss") }', steps=60)
    _, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    res = r.results["s"]
    pruned = [t for t in res["trials"] if t["state"] == "pruned"]
    assert pruned and all(t["generation"] > 0 or t["number"] >= 2 for t in pruned)  # after `startup` finished
    assert sum(g["failed"] for g in res["generations"]) == len(pruned)  # told as failed: never parents' elites


@pytest.mark.slow
def test_candidates_run_in_worker_processes_with_the_same_results(evolved, tmp_path):
    _, r, _ = evolved
    f = program(tmp_path, EVOLUTION % ", parallel = 2")
    s, r2 = run(f, tmp_path / "store")
    assert r2.status == "ok", r2.failure
    assert [(t["params"], t["value"]) for t in r2.results["s"]["trials"]] == [
        (t["params"], t["value"]) for t in r.results["s"]["trials"]]
    db = sqlite3.connect(str(tmp_path / "store" / "runs.sqlite"))
    pids = {p for (p,) in db.execute("SELECT pid FROM node_runs WHERE op='fit' AND status='ran'")}
    db.close()
    assert len(pids) >= 2  # the search's process and its workers


def test_a_diverging_candidate_counts_as_failed_and_the_search_goes_on(tmp_path):
    """A candidate whose training diverges (here: a training temperature below float32's range makes
    the loss nan at step 1) is recorded as failed with its diagnostic, and the search goes on; it
    fails only when every candidate of a generation fails."""
    f = write(tmp_path / "d.exp", """\
experiment t { seed = 0 }
param t ~ loguniform(1e-60, 1, default = 1)
data d = split(digits(), test = 0.3)
train clf = fit(mlp(hidden = [16]), d.train, steps = 20, temperature = t)
eval acc = accuracy(clf, d.test)
search s { objective = maximize(acc), strategy = evolution(population = 6, seed = 0), generations = 2 }
""")
    s, r = run(f, tmp_path / "store")
    assert r.status == "ok", r.failure
    trials = r.results["s"]["trials"]
    failed = [t for t in trials if t["state"] == "fail"]
    assert failed and any(t["state"] == "complete" for t in trials)
    for t in failed:
        assert "training loss is nan" in t["error"] and t["params"]["t"] < 1e-38


def test_a_generation_that_fails_entirely_fails_the_search(tmp_path):
    f = write(tmp_path / "e.exp", """\
experiment t { seed = 0 }
param t ~ loguniform(1e-60, 1e-50, default = 1e-55)
data d = split(digits(), test = 0.3)
train clf = fit(mlp(hidden = [16]), d.train, steps = 20, temperature = t)
eval acc = accuracy(clf, d.test)
search s { objective = maximize(acc), strategy = evolution(population = 4, seed = 0), generations = 2 }
""")
    s, r = run(f, tmp_path / "store")
    assert r.status != "ok" and "training loss is nan" in str(r.failure)


@pytest.mark.slow
def test_candidates_run_as_ray_tasks_with_the_local_results(tmp_path):
    """A generation's candidates go through the same map as parallel trials, so on a local Ray
    instance they give the candidates and values of the local run."""
    pytest.importorskip("ray")
    search = "search s { objective = maximize(acc), strategy = evolution(population = 4, seed = 2), generations = 2, parallel = 2 }"
    f = program(tmp_path, search, steps=20)
    ray_session = Session.open(f, cache=tmp_path / "ray", settings={"backend": "ray"})
    r = ray_session.run()
    assert r.status == "ok", r.failure
    _, local = run(f, tmp_path / "local")
    assert [(t["params"], t["value"]) for t in r.results["s"]["trials"]] == [
        (t["params"], t["value"]) for t in local.results["s"]["trials"]]
    db = sqlite3.connect(str(tmp_path / "ray" / "runs.sqlite"))
    pids = {p for (p,) in db.execute("SELECT pid FROM node_runs WHERE op='fit' AND status='ran'")}
    db.close()
    assert len(pids) >= 2  # the search's process and Ray's workers
