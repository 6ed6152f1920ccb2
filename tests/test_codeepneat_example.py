"""examples/codeepneat.exp at reduced size (2 generations of 4 networks, 8 random networks, 2 epochs): it
checks, runs both searches over the same space, and reports. The full run's numbers are in the README."""

from __future__ import annotations

import shutil

import pytest

import expc
from conftest import EXAMPLES
from expc.runtime.ops import coevolved as CO

SMALL = ["generations=2", "assemblies=4", "trials=8", "epochs=2"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("codeepneat")
    shutil.copy(EXAMPLES / "codeepneat.exp", root)
    return expc.run(root / "codeepneat.exp", SMALL, cache=root / ".expc")


@pytest.mark.slow
def test_codeepneat_and_random_search_train_networks_of_the_same_space(results):
    evo, rnd = results["evo"].data, results["rnd"].data
    gens = evo["generations"]
    assert [g["candidates"] for g in gens] == [4, 4] and len(rnd["trials"]) == 8
    for g in gens:
        assert sum(g["module_species"]) == 24 and sum(g["blueprint_species"]) == 12
        assert 1 <= len(g["module_species"]) <= 4 and g["species"] == g["module_species"]
    space = CO.coevolved.params()  # the example's space is the issue's, which is coevolved()'s default
    for best in (evo["best"]["arch"], rnd["best"]["arch"]):
        assert space.contains(best) is None
    assert evo["best_value"] == max(g["best"] for g in gens)
    assert 0.3 < evo["best_value"] <= 1 and 0.3 < rnd["best_value"] <= 1  # chance is 0.1
    table = results["results"]["table"]
    assert [r[0] for r in table["rows"]] == ["codeepneat", "random search", "default network"]
