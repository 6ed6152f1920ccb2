"""A miniature of examples/dem.exp through `expc run`: the shipped program with smaller numbers given as
overrides (tiny model, few steps, 4 trials). Checks the printed report and the run registry."""

from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path

from expc.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dem.exp"
MINI = ["steps=5", "base.steps=30", "init.layers=1", "init.width=16", "init.heads=2", "init.context=16",
        "sweep.trials=4"]


def test_dem_miniature_prints_the_table_and_reuses_the_fine_tunes(tmp_path, capsys):
    store = tmp_path / "store"
    assert main(["run", str(EXAMPLE), *MINI, "--cache", str(store)]) == 0
    out = capsys.readouterr().out

    # the table: base, data mixing and DEM (best weights) on each held-out source and the mixture
    lines = out[out.index("report results"):].splitlines()
    assert lines[1].split() == ["math", "code", "prose", "mixture"]
    names = ["base", "data mixing", "dem, w = 0.3", "dem, best w"]
    rows = {}
    for ln, name in zip(lines[3:7], names):
        assert ln.startswith(name)
        rows[name] = [float(x) for x in ln[len(name):].split()]
    assert all(len(v) == 4 and all(math.isfinite(x) and x > 1 for x in v) for v in rows.values())

    cost = next(ln for ln in lines if ln.startswith("sweep: 4 weightings searched in"))
    assert re.search(r"retraining 'm_mix' \(\d+\.\d s each\) would take \d+ s", cost)
    plots = [Path(ln.split("plot: ", 1)[1]) for ln in lines if ln.startswith("plot: ")]
    assert len(plots) == 3 and all(p.is_file() and p.stat().st_size > 1000 for p in plots)

    db = sqlite3.connect(str(store / "runs.sqlite"))
    rows_db = db.execute("SELECT node, op, status, bindings FROM node_runs").fetchall()
    ran = [(n, op, b) for n, op, st, b in rows_db if st == "ran"]
    # every fine-tune ran once: base, three sources, the mixing baseline
    assert sorted(n for n, op, _ in ran if op == "finetune") == ["base", "m_code", "m_math", "m_mix", "m_prose"]
    # the merge ran once with the default weights and once per trial; the best weights were a trial's
    assert sum(1 for _, op, _ in ran if op == "algebra") == 1 + 4
    # evaluations: 4 trials, and the table's 16 cells less the one that is a trial's (mixture, best w)
    assert sum(1 for _, op, _ in ran if op == "perplexity") == 4 + 16 - 1
    trial_evals = [b for n, op, b in ran if n == "ppl_dem" and b != "{}"]
    assert len(trial_evals) == 4
    # the search's wall time and the mixing fine-tune's are both in the registry (the cost line reads them)
    secs = dict(db.execute("SELECT node, seconds FROM node_runs WHERE status='ran' AND node IN ('sweep','m_mix')"))
    assert secs["sweep"] > 0 and secs["m_mix"] > 0
    db.close()

    # a second run computes nothing
    assert main(["run", str(EXAMPLE), *MINI, "--cache", str(store)]) == 0
    capsys.readouterr()
    db = sqlite3.connect(str(store / "runs.sqlite"))
    last = db.execute("SELECT MAX(run_id) FROM node_runs").fetchone()[0]
    assert db.execute("SELECT COUNT(*) FROM node_runs WHERE run_id=? AND status='ran'", (last,)).fetchone()[0] == 0
    db.close()
