"""The Backpropamine programs: check-time diagnostics, examples/backpropamine.exp at reduced size,
a few episodes of examples/backpropamine_maze.exp, and an a2c run killed with kill -9 that resumes
from its checkpoint and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import expc
from conftest import EXAMPLES, expc_bin, write
from expc.interpreter.session import Session

BAD = """\
data d = digits()
train m = fit(plastic_rnn(), d, steps = 10)
train m2 = fit(lstm(), pattern_completion(), steps = 10)
train m3 = fit(plastic_rnn(plasticity = "neuromodulatd"), pattern_completion(), steps = 10)
train m4 = a2c(policy = mlp(), env = maze(), episodes = 10)
"""


def test_check_time_diagnostics(tmp_path):
    exp = write(tmp_path / "bad.exp", BAD)
    out = subprocess.run([*expc_bin(), "check", str(exp)], capture_output=True, text=True, cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "bad.exp:2:30: error[E301]: argument 'data' of fit() expects episodes, got tensors" in text
    assert "unknown plasticity 'neuromodulatd': did you mean 'neuromodulated'?" in text
    assert "bad.exp:5:25: error[E301]: argument 'policy' of a2c() expects recurrent, got net" in text
    assert "m2:" not in text  # an lstm on episodes is fine


SMALL = ["steps=40", "episodes=32", "n=100"]


def test_example_at_reduced_size(tmp_path):
    shutil.copy(EXAMPLES / "backpropamine.exp", tmp_path)
    results = expc.run(tmp_path / "backpropamine.exp", SMALL, cache=tmp_path / ".expc")
    m = results.metric
    for name in ("err_plastic", "err_rnn", "err_lstm"):
        assert 0 <= m(name) <= 1 and results[name].data["episodes"] == 100
    # the nets the example compares have about the same size, as it states
    assert (m("size_plastic"), m("size_rnn"), m("size_lstm")) == (4257, 4272, 4352)
    for name in ("ret_plastic", "ret_fixed"):
        assert -15 <= m(name) <= 15 and results[name].data["episodes"] == 200
    assert len(results["results"].data["table"]["rows"]) == 8


def test_maze_example_runs_a_few_episodes(tmp_path):
    shutil.copy(EXAMPLES / "backpropamine_maze.exp", tmp_path)
    results = expc.run(tmp_path / "backpropamine_maze.exp", ["episodes=30", "hidden=8"], cache=tmp_path / ".expc")
    for name in ("ret_plastic", "ret_fixed"):
        assert 0 <= results.metric(name) <= 10 * 200 and results[name].data["episodes"] == 100


PROGRAM = """\
experiment killme { seed = 0  device = "cpu" }
env cues = cue_reward(cues = 4, cue_size = 4, trials = 4)
train agent = a2c(policy = plastic_rnn(hidden = 8), env = cues, episodes = 1600, batch = 8, checkpoint_every = 10)
"""


def _max_logged_step(db: Path) -> int:
    if not db.exists():
        return -1
    try:
        con = sqlite3.connect(str(db), timeout=5)
        row = con.execute("SELECT MAX(step) FROM metrics WHERE node='agent' AND name='return'").fetchone()
        con.close()
    except sqlite3.OperationalError:
        return -1
    return -1 if row[0] is None else int(row[0])


def _weights(model) -> dict[str, torch.Tensor]:
    return load_file(str(Path(model.path) / "model.safetensors"))


@pytest.mark.slow
def test_a2c_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path, subprocess_env):
    exp = write(tmp_path / "k.exp", PROGRAM)
    cache = tmp_path / "store"
    proc = subprocess.Popen([*expc_bin(), "run", str(exp), "--cache", str(cache)], cwd=tmp_path, env=subprocess_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    try:
        while _max_logged_step(cache / "runs.sqlite") < 8 * 30:  # past the checkpoints of updates 10 and 20
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.time() < deadline, "a2c never got going"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    session = Session.open(exp, [], cache)
    resumed = session.run()
    assert resumed.status == "ok", resumed.failure
    first = session.runs.db.execute(
        "SELECT MIN(step) FROM metrics WHERE run_id=? AND node='agent' AND name='return'", (resumed.run_id,)
    ).fetchone()[0]
    assert first is not None and first > 8 * 10  # it resumed from a checkpoint

    fresh = expc.run(exp, [], cache=tmp_path / "fresh")
    a, b = _weights(resumed.results["agent"]), _weights(fresh["agent"].data)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
