"""examples/fop.exp at a smoke size (2 seeds, 30 steps): it runs, every replicate covers both seeds,
and the report prints replicates as mean ± sd and the paired effects with their intervals."""

from __future__ import annotations

import re

from conftest import EXAMPLES
from expc.interpreter.session import Session


def test_the_fop_example_runs_small(tmp_path):
    s = Session.open(EXAMPLES / "fop.exp", overrides=["seeds=2", "steps=30"], cache=tmp_path / "store")
    r = s.run()
    assert r.status == "ok", r.failure
    names = [f"{m}_{o}" for m in ("acc", "auc") for o in ("sgd", "fop_sgd", "adam", "fop_adam")]
    for name in names:
        rep = r.results[name]
        assert rep["seeds"] == [0, 1] and rep["n"] == 2 and rep["param"] == "seed"
    # the loss AUC is the mean training loss: between the first logged block's and zero, per seed
    assert len(set(r.results["auc_sgd"]["values"])) == 2  # each seed trained its own network
    assert all(0 < v < 2.5 for v in r.results["auc_sgd"]["values"])
    table = r.results["results"]["table"]
    assert table["headers"] == ["", "test accuracy", "loss AUC"]
    rows = {row[0]: row[1:] for row in table["rows"]}
    assert list(rows) == ["sgd", "fop(sgd)", "fop(sgd) - sgd", "adam", "fop(adam)", "fop(adam) - adam"]
    assert all(re.fullmatch(r"\S+ ± \S+ \(n=2\)", cell) for cell in rows["sgd"] + rows["adam"])
    assert all(re.fullmatch(r"[+-]\S+ (\[\S+, \S+\]|± 0) \(n=2\)", cell) for cell in rows["fop(sgd) - sgd"])
    assert r.results["results"]["plots"] == ["00_curves_sgd_clf_fop_sgd_clf_adam_clf_fop_adam_clf.png"]
