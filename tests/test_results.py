"""Results as data: `expc run/show --json`, one-line summaries in `expc show` (declared by the value
types), and the Python API (`expc.run`, `expc.load`). One tiny real run (a 1-layer GPT-2, a 2-trial
search, a report) is shared by the module; the rest reads it back."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from conftest import ROOT, write
from expc.cli import main

PROGRAM = """\
experiment tiny { seed = 0 }
param n ~ int(20, 40, default = 30)
data sums = split(arithmetic(n = n, digits = 2), test = 0.5)
model init = gpt2(layers = 1, width = 16, heads = 2, context = 16)
eval ppl = perplexity(init, sums.test)
search sweep { objective = minimize(ppl), sampler = random(0), trials = 2 }
report results { table = { init: { ppl: ppl } } }
"""

DATA_ONLY = """\
experiment d { seed = 0 }
data sums = arithmetic(n = 20, digits = 2)
data head = take(sums, 3)
"""


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """`expc run --json` of PROGRAM: (file, store, stdout, stderr)."""
    tmp = tmp_path_factory.mktemp("results")
    exp = write(tmp / "tiny.exp", PROGRAM)
    store = tmp / "store"
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["run", str(exp), "--cache", str(store), "--json"])
    assert code == 0, err.getvalue()
    return exp, store, out.getvalue(), err.getvalue()


def test_run_json_holds_every_declared_result_and_nothing_else(first_run):
    _, store, out, err = first_run
    data = json.loads(out)  # stdout is the JSON alone: progress went to stderr
    assert "done   init" in err or "run    init" in err
    assert data["run"] == 1 and data["status"] == "ok" and data["failure"] is None
    assert {"init", "ppl", "sweep", "sums.arithmetic"} <= set(data["ran"]) and data["cached"] == []
    res = data["results"]
    assert list(res) == ["sums", "init", "ppl", "sweep", "results"]
    assert {r["type"] for r in res.values()} == {"split[data]", "model", "metric", "search", "report"}

    ppl = res["ppl"]["value"]  # a metric with its details
    assert ppl["value"] == ppl["perplexity"] > 1 and ppl["tokens"] > 0 and "bits_per_byte" in ppl

    init = res["init"]  # an artifact: absolute paths
    assert Path(init["path"]).is_absolute() and (Path(init["path"]) / "config.json").is_file()
    assert init["value"]["$artifact"] == "model" and init["value"]["n_params"] > 0
    train = res["sums"]["value"]["train"]
    assert train["$artifact"] == "data" and train["n"] == 15
    assert (Path(train["path"]) / train["file"]).is_file()

    sweep = res["sweep"]["value"]  # the search's trials
    values = [t["value"] for t in sweep["trials"]]
    assert len(values) == 2 and sweep["best_value"] == min(values)
    assert (Path(res["sweep"]["dir"]) / sweep["study"]).is_file()

    table = res["results"]["value"]["table"]  # the report's table
    assert table["headers"] == ["", "ppl"] and table["rows"] == [["init", f"{ppl['value']:.4g}"]]
    assert Path(res["results"]["dir"]).is_dir() and str(store.resolve()) in res["results"]["dir"]


def test_show_prints_summaries_not_json(first_run, run_cli):
    _, store, out, _ = first_run
    res = json.loads(out)["results"]
    code, shown, err = run_cli("show", "--cache", store)
    assert code == 0, err
    rows = {line.split()[0]: line for line in shown.splitlines()[3:8]}
    assert set(rows) == {"sums", "init", "ppl", "sweep", "results"}
    assert not any("{" in r or '"' in r for r in rows.values()), shown
    assert rows["sums"].endswith(f"train n=15, test n=15 examples; data in {store / 'runs' / '1' / 'sums'}")
    assert "GPT2LMHeadModel, 7,664 parameters, float32; model in" in rows["init"]
    assert f"{res['ppl']['value']['value']:.6g}  (nats_per_token=" in rows["ppl"]
    best = res["sweep"]["value"]["best"]["n"]
    assert rows["sweep"].endswith(f"search  2 trials, best ppl = {res['sweep']['value']['best_value']:.6g} at n={best}")
    assert rows["results"].endswith("report  table of 1 row (init) x 1 column")
    # and `expc run` prints the same summaries
    code, again, err = run_cli("run", first_run[0], "--cache", store)
    assert code == 0, err
    assert "2 trials, best ppl = " in again and "table of 1 row (init) x 1 column" in again


def test_show_json_reads_back_what_run_json_printed(first_run, run_cli):
    _, store, out, _ = first_run
    code, shown, err = run_cli("show", "1", "--cache", store, "--json")
    assert code == 0, err
    ran, back = json.loads(out), json.loads(shown)
    assert back["results"] == ran["results"]
    assert (back["run"], back["status"], back["experiment"]) == (1, "ok", "tiny")
    assert set(back["ran"]) == set(ran["ran"])
    code, _, err = run_cli("show", "99", "--cache", store, "--json")
    assert code == 2 and "no run 99" in err


def test_python_api_run_and_load_round_trip(first_run):
    import expc

    exp, store, out, _ = first_run
    r = expc.run(exp, overrides={"sweep.trials": 3}, cache=store)
    assert r.status == "ok" and r.run_id >= 2
    assert "init" in r.cached and "sweep" in r.ran  # only the search (3 trials now) reran
    first = json.loads(out)["results"]
    assert r.metric("ppl") == r["ppl"].value == first["ppl"]["value"]["value"]
    assert r["ppl"].data["tokens"] == first["ppl"]["value"]["tokens"]
    assert r["init"].path == r["init"].value == Path(first["init"]["path"]) and r["init"].path.is_dir()
    assert r["sums"]["train"] == Path(first["sums"]["value"]["train"]["path"])
    assert len(r["sweep"]["trials"]) == 3 and r["results"]["table"]["headers"] == ["", "ppl"]
    with pytest.raises(TypeError, match="not a number or a metric"):
        r.metric("init")
    with pytest.raises(KeyError, match="did you mean 'ppl'"):
        r["ppl2"]

    back = expc.load(store)
    assert back.run_id == r.run_id and back.overrides == ["sweep.trials=3"]
    assert back.to_json()["results"] == json.loads(json.dumps(r.to_json()))["results"]
    assert {n: x.summary for n, x in back.items()} == {n: x.summary for n, x in r.items()}
    assert expc.load(store, run=1).to_json()["results"] == first
    assert expc.load(store / "runs" / "1").run_id == 1
    with pytest.raises(LookupError):
        expc.load(store, run=99)


def test_import_expc_and_its_api_load_no_torch():
    code = ("import sys, expc\n"
            "assert callable(expc.run) and callable(expc.load) and expc.Results\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'optuna'}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_show_reads_a_store_recorded_before_result_types(tmp_path, run_cli):
    exp = write(tmp_path / "d.exp", DATA_ONLY)
    store = tmp_path / "store"
    assert run_cli("run", exp, "--cache", store)[0] == 0
    db = sqlite3.connect(str(store / "runs.sqlite"))
    db.executescript("CREATE TABLE old AS SELECT run_id, node, key, kind, summary FROM results;"
                     "DROP TABLE results; ALTER TABLE old RENAME TO results;")
    db.close()
    code, shown, err = run_cli("show", "--cache", store)
    assert code == 0, err
    assert "n=20 examples, 138 bytes; data in" in shown  # the type: arithmetic's return type
    assert "n=3 examples, 21 bytes; data in" in shown  # take returns "{data}": the type of its artifact
    db = sqlite3.connect(str(store / "runs.sqlite"))
    assert "type" in [row[1] for row in db.execute("PRAGMA table_info(results)")]  # the column was added
    db.close()


def test_declared_summaries():
    from expc.runtime.registry import load_registry

    types = load_registry().types
    search = {"objectives": ["ppl", "cost"], "best": {"w": 0.41234, "k": 2}, "best_value": 4.5,
              "pareto": [{}, {}], "trials": [{"state": "complete"}, {"state": "pruned"}, {"state": "complete"}]}
    assert types.summary("search", search) == ("3 trials (1 pruned), best ppl = 4.5 at w=0.4123, k=2; "
                                               "2 on the Pareto front")
    report = {"table": {"headers": ["", "a", "b"], "rows": [["x", 1, 2], ["y", 3, 4]]}, "lines": ["c"], "plots": []}
    assert types.summary("report", report) == "table of 2 rows (x, y) x 2 columns, 1 cost line"
    metric = {"value": 12.0, "perplexity": 12.0, "nats_per_token": 2.4849, "tokens": 123456, "per_step": [1, 2]}
    assert types.summary("metric", metric) == "12  (nats_per_token=2.4849, tokens=123,456)"
    assert types.summary("metric", {"value": 3, "per_iteration": [0, 3], "solved": -5.5}) == "3  (solved=-5.5)"
