"""kill -9 in the middle of a run: the store stays consistent, the rerun reuses every finished node,
and the interrupted fine-tune resumes from its last checkpoint instead of starting over."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import expc_bin, write
from expc.interpreter.session import Session

PROGRAM = """\
experiment killme { seed = 0  device = "cpu" }
data d = arithmetic(n = 400, digits = 2)
model base = gpt2(layers = 1, width = 32, heads = 2, context = 32)
model m = finetune(base, d, steps = 400, lr = 1e-3, batch = 4, context = 32, checkpoint_every = 10)
eval e = loss(m, d)
"""


def _max_logged_step(db: Path) -> int:
    if not db.exists():
        return -1
    try:
        con = sqlite3.connect(str(db), timeout=5)
        row = con.execute("SELECT MAX(step) FROM metrics WHERE node='m' AND name='loss'").fetchone()
        con.close()
    except sqlite3.OperationalError:
        return -1
    return -1 if row[0] is None else int(row[0])


@pytest.mark.slow
def test_kill_9_then_rerun_reuses_finished_work(tmp_path, subprocess_env):
    exp = write(tmp_path / "k.exp", PROGRAM)
    cache = tmp_path / "store"
    proc = subprocess.Popen(
        [*expc_bin(), "run", str(exp), "--cache", str(cache)], cwd=tmp_path, env=subprocess_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 120
    try:
        while _max_logged_step(cache / "runs.sqlite") < 30:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.time() < deadline, "the fine-tune never got going"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = _max_logged_step(cache / "runs.sqlite")

    # Only complete results are in objects/: each has its value.json.
    objects = [d for d in (cache / "objects").glob("*/*") if d.is_dir()]
    assert objects, "data and base model should have been committed before the kill"
    assert all((d / "value.json").is_file() for d in objects)

    session = Session.open(exp, [], cache)
    result = session.run()
    assert result.status == "ok", result.failure
    status = {n: s for n, _, s in result.trail}
    assert status == {"d": "cached", "base": "cached", "m": "ran", "e": "ran"}

    # The fine-tune resumed from a checkpoint: its first logged step in this run is past 0.
    rows = session.runs.db.execute(
        "SELECT MIN(step) FROM metrics WHERE run_id=? AND node='m' AND name='loss'", (result.run_id,)
    ).fetchone()
    assert rows[0] is not None and rows[0] > 10, (rows, killed_at)
