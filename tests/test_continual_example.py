"""examples/ada.exp at reduced size (3 epochs a task, 2 seeds, 50 distillation steps): it checks, runs
every method on one stream and one backbone, and fills its report. Only what holds by construction or
with a wide margin is asserted (the full run's numbers are in the README)."""

from __future__ import annotations

import shutil

import pytest

import expc
from conftest import EXAMPLES

SMALL = ["epochs=3", "seeds=2", "steps=50"]
RUNS = ["seq", "ewc_run", "replay_run", "per_task", "ada_leep", "ada_transrate", "ada_random"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("ada")
    shutil.copy(EXAMPLES / "ada.exp", root)
    return expc.run(root / "ada.exp", SMALL, cache=root / ".expc")


@pytest.mark.slow
def test_one_backbone_serves_every_method(results):
    assert results.ran.count("backbone") == 1
    assert results.metric("backbone_acc") > 0.9  # digits 0-4
    for name in RUNS:
        R = results[name].data["matrix"]
        assert len(R) == 6 and all(sum(x is not None for x in row) == i + 1 for i, row in enumerate(R))
        assert all(x > 0.5 for x in R[-1])  # binary tasks: better than chance on every one


@pytest.mark.slow
def test_memory_adapters_grow_ada_stays_at_its_pool(results):
    per, ada = results["per_task"].data, results["ada_leep"].data
    assert per["n_params"]["n_adapters"] == 6 and ada["n_params"]["n_adapters"] == 2
    assert per["n_params"]["backbone"] == ada["n_params"]["backbone"] == results["seq"].data["n_params"]["backbone"]
    assert ada["n_params"]["value"] < per["n_params"]["value"]
    # a frozen backbone and an adapter per task: nothing is forgotten, exactly
    assert per["forgetting"] == 0.0 and per["bwt"] == 0.0
    assert [c["distilled"] for c in ada["choices"]] == [False, False, True, True, True, True]
    assert all(c["slot"] in (0, 1) for c in ada["choices"])


@pytest.mark.slow
def test_the_report_has_every_method_and_the_plots(results):
    report = results["results"].data
    rows = report["table"]["rows"]
    assert [r[0] for r in rows] == ["sequential", "ewc", "replay", "adapters", "ada (leep)", "ada (transrate)",
                                    "ada (random)", "ada: leep - random"]
    assert report["table"]["headers"][1:] == ["avg accuracy", "forgetting", "BWT", "parameters", "inference cost",
                                              "wall time (s)"]
    assert all(r[1].endswith("(n=2)") for r in rows)
    assert rows[3][2] == "0 ± 0 (n=2)"  # adapters forget nothing under any seed
    assert len(report["plots"]) == 7 and report["plots"][0] == "00_matrix_seq.png"
    assert all((results["results"].dir / p).stat().st_size > 1000 for p in report["plots"])
