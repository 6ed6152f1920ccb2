"""Continual learning in the language: the `continual` kind and its types at check time, located
diagnostics for bad input (check time where the file tells, else at the node), one backbone shared by
every method's run (the cache), a changed method param rerunning only its run, resuming by task after
kill -9, and a transformers (GPT-2) backbone with peft adapters."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

import expc
from conftest import expc_bin, write
from expc.interpreter.compiler import compile
from expc.interpreter.results import RunFailed
from expc.interpreter.session import Session

HEAD = """\
experiment cl { seed = 0 }
data dn = digits(normalize = true)
data src = classes(dn, labels = [0, 1, 2, 3, 4])
train backbone = fit(mlp(hidden = [32]), src, optimizer = adam(lr = 3e-3), epochs = 3)
data s = tasks(
  classes(dn, labels = [5, 6]),
  classes(permute(dn, seed = 1), labels = [7, 8]),
  classes(invert(dn), labels = [5, 9]),
  test = 0.3,
)
"""


def _errors(tmp_path: Path, text: str):
    with pytest.raises(Exception) as err:
        compile(write(tmp_path / "t.exp", text))
    return err.value.diagnostics


def test_types_and_kinds(tmp_path):
    program = compile(write(tmp_path / "t.exp", HEAD + (
        "continual r { stream = s, model = backbone, method = ada(pool = 2, adapter = adapter(bottleneck = 4)) }\n"
        "eval a = avg_accuracy(r)\neval f = forgetting(r)\neval b = bwt(r)\neval n = n_params(r)\n"
        "eval c = inference_cost(r)\neval l = leep(backbone, src)\neval t = transrate(backbone, src)\n"
        "report out { plot = [matrix(r)] }\n"))).program
    types = {k: v.type for k, v in program.nodes.items()}
    assert types["s"] == "stream" and types["r"] == "continual"
    assert all(types[k] == "metric" for k in "afbnclt")


# -- bad input at check time ------------------------------------------------------------------------------


def test_a_pool_below_one_is_a_check_error(tmp_path):
    (d,) = _errors(tmp_path, HEAD + "continual r { stream = s, model = backbone, method = ada(pool = 0) }\n")
    assert d.code == "E401" and (d.span.line, d.span.col) == (11, 65)  # at the 0
    assert "'pool' of ada()" in d.message and "greater than or equal to 1" in d.message


def test_a_method_field_on_the_wrong_method_is_a_check_error(tmp_path):
    (d,) = _errors(tmp_path, HEAD + "continual r { stream = s, model = backbone, method = sequential(pool = 2) }\n")
    assert d.code == "E402" and d.message == "sequential() has no parameter 'pool'" and d.span.line == 11
    (d,) = _errors(tmp_path, HEAD + "continual r { stream = s, model = backbone, method = ewc(per_task = 20) }\n")
    assert d.message == "ewc() has no parameter 'per_task'" and d.hint == "parameters: strength, samples"


def test_no_layer_matching_at_is_a_check_error_when_the_file_says_the_architecture(tmp_path):
    (d,) = _errors(tmp_path, HEAD + (
        'continual r { stream = s, model = backbone, method = adapters(adapter = adapter(at = "conv")) }\n'))
    assert d.code == "E600" and d.span.line == 11
    assert d.message == 'r: no layer of the backbone matches at = "conv" (its layers: hidden.0)'
    text = HEAD.replace("mlp(hidden = [32])", "mlp(hidden = [])") + (
        "continual r { stream = s, model = backbone, method = ada() }\n")
    (d,) = _errors(tmp_path, text)
    assert "(its layers: none: the net has no hidden or conv layer)" in d.message


def test_a_method_that_is_not_a_method_is_a_check_error(tmp_path):
    (d,) = _errors(tmp_path, HEAD + "continual r { stream = s, model = backbone, method = adam(lr = 0.1) }\n")
    assert d.code == "E301" and "method" in d.message


# -- bad input at run time: at the node, with the task index ----------------------------------------------


def test_tasks_of_different_shapes_fail_at_that_task(tmp_path):
    path = write(tmp_path / "t.exp", "data s = tasks(digits(), iris(), test = 0.3)\n")
    with pytest.raises(RunFailed) as err:
        expc.run(path, cache=tmp_path / ".expc")
    failure = err.value.results.failure
    assert "task 1 (iris()) has examples of shape [4], task 0 (digits()) [1, 8, 8]" in failure["message"]
    assert (failure["span"]["line"], failure["span"]["col"]) == (1, 26)


def test_no_layer_matching_at_fails_at_the_node_when_the_file_does_not_say(tmp_path):
    # a merge of the backbone: its layers are known only when the run starts
    path = write(tmp_path / "t.exp", HEAD + (
        'merge scaled = where("head.*", 2 * backbone, backbone)\n'
        'continual r { stream = s, model = scaled, method = adapters(adapter = adapter(at = "conv")) }\n'))
    compile(path)
    with pytest.raises(RunFailed) as err:
        expc.run(path, cache=tmp_path / ".expc")
    failure = err.value.results.failure
    assert failure["message"] == 'r: no layer of the backbone matches at = "conv" (its layers: hidden.0)'
    assert (failure["span"]["line"], failure["span"]["col"]) == (12, 52)  # the method argument


# -- the cache: one backbone, and only the changed method reruns ------------------------------------------

PROGRAM = HEAD + """\
param strength = 100
continual seq { stream = s, model = backbone, method = sequential(), epochs = 2 }
continual e { stream = s, model = backbone, method = ewc(strength = strength, samples = 20), epochs = 2 }
continual ad { stream = s, model = backbone, method = ada(pool = 1, distill = distill(steps = 10)), epochs = 2 }
eval acc_e = avg_accuracy(e)
report out {
  table = {sequential: {acc: avg_accuracy(seq), forgetting: forgetting(seq)}, ewc: {acc: acc_e}}
  plot = [matrix(seq), matrix(ad)]
}
"""


def test_every_run_reuses_the_backbone_and_a_changed_param_reruns_one_run(tmp_path):
    path = write(tmp_path / "p.exp", PROGRAM)
    first = expc.run(path, cache=tmp_path / ".expc")
    assert first.ran.count("backbone") == 1 and {"seq", "e", "ad"} <= set(first.ran)
    plots = first["out"].data["plots"]
    assert plots == ["00_matrix_seq.png", "01_matrix_ad.png"]
    assert all((first["out"].dir / p).stat().st_size > 1000 for p in plots)
    assert first.metric("acc_e") == pytest.approx(sum(first["e"].data["matrix"][-1]) / 3)
    second = expc.run(path, ["strength=1000"], cache=tmp_path / ".expc")
    assert {"e", "acc_e", "out"} <= set(second.ran)
    assert not {"seq", "ad", "backbone", "s"} & set(second.ran) and {"seq", "ad", "backbone"} <= set(second.cached)
    assert second["e"].data["matrix"] != first["e"].data["matrix"]


def test_expc_show_prints_the_matrix(tmp_path, run_cli):
    path = write(tmp_path / "p.exp", HEAD + "continual r { stream = s, model = backbone, method = sequential(), "
                                            "epochs = 1 }\n")
    code, out, _ = run_cli("run", path, "--cache", tmp_path / ".expc", cwd=tmp_path)
    assert code == 0 and "accuracy matrix of sequential()" in out
    code, out, _ = run_cli("show", "--cache", tmp_path / ".expc", cwd=tmp_path)
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if "accuracy matrix of sequential()" in line)
    assert lines[header + 1].split() == ["t0", "t1", "t2"]
    assert lines[header + 3].split()[:4] == ["after", "t0", lines[header + 3].split()[2], "-"]
    assert "matrix.png" in out


# -- resuming by task after kill -9 -----------------------------------------------------------------------

KILL = """\
experiment killcl { seed = 0  device = "cpu" }
data dn = digits(normalize = true)
train backbone = fit(mlp(hidden = [32]), classes(dn, labels = [0, 1, 2, 3, 4]), epochs = 2)
data s = tasks(
  classes(dn, labels = [5, 6]),
  classes(permute(dn, seed = 1), labels = [7, 8]),
  classes(invert(dn), labels = [5, 9]),
  classes(dn, labels = [7, 9]),
  classes(permute(dn, seed = 1), labels = [5, 8]),
  classes(invert(dn), labels = [6, 8]),
)
continual r { stream = s, model = backbone, method = replay(per_task = 20), epochs = 40 }
"""


def _tasks_done(db: Path) -> int:
    if not db.exists():
        return -1
    try:
        con = sqlite3.connect(str(db), timeout=5)
        row = con.execute("SELECT MAX(step) FROM metrics WHERE node='r' AND name='avg_accuracy'").fetchone()
        con.close()
    except sqlite3.OperationalError:
        return -1
    return -1 if row[0] is None else int(row[0])


@pytest.mark.slow
def test_kill_9_mid_stream_then_rerun_continues_from_the_last_finished_task(tmp_path, subprocess_env):
    exp = write(tmp_path / "k.exp", KILL)
    cache = tmp_path / "store"
    proc = subprocess.Popen([*expc_bin(), "run", str(exp), "--cache", str(cache)], cwd=tmp_path, env=subprocess_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    try:
        while _tasks_done(cache / "runs.sqlite") < 2:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.time() < deadline, "the stream never got going"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_after = _tasks_done(cache / "runs.sqlite")
    assert 2 <= killed_after < 6

    session = Session.open(exp, [], cache)
    result = session.run()
    assert result.status == "ok", result.failure
    status = {n: s for n, _, s in result.trail}
    assert status["r"] == "ran" and status["backbone"] == "cached"
    rows = session.runs.db.execute("SELECT step, value FROM metrics WHERE run_id=? AND node='r' AND name=?",
                                   (result.run_id, "resumed_at_task")).fetchall()
    assert rows and rows[0][1] >= 2, rows  # it went on from a finished task, not from the start
    first_step = session.runs.db.execute(
        "SELECT MIN(step) FROM metrics WHERE run_id=? AND node='r' AND name='avg_accuracy'", (result.run_id,)
    ).fetchone()[0]
    assert first_step == rows[0][1] + 1

    # and it ends where an uninterrupted run ends
    fresh = expc.run(exp, cache=tmp_path / "fresh")
    assert result.results["r"]["matrix"] == fresh["r"].data["matrix"]


# -- a transformers backbone (peft) -----------------------------------------------------------------------

GPT2 = """\
experiment clgpt { seed = 0 }
data d = digits()
model base = gpt2(layers = 1, width = 32, heads = 2, context = 64)
data s = tasks(classes(d, labels = [0, 1]), classes(invert(d), labels = [2, 3]), classes(d, labels = [4, 5]))
continual ad {
  stream = s
  model = base
  method = ada(pool = 1, adapter = adapter(bottleneck = 4, at = "c_attn"), distill = distill(steps = 5))
  epochs = 1
}
continual per {
  stream = s
  model = base
  method = adapters(adapter = adapter(bottleneck = 4, at = "c_attn"))
  epochs = 1
}
continual seq { stream = s, model = base, method = sequential(), epochs = 1 }
"""


@pytest.mark.slow
def test_a_gpt2_backbone_with_peft_lora_adapters(tmp_path):
    res = expc.run(write(tmp_path / "g.exp", GPT2), cache=tmp_path / ".expc")
    ad, per, seq = (res[n].data for n in ("ad", "per", "seq"))
    assert ad["backbone"] == "transformers" and len(ad["matrix"]) == 3
    # LoRA on c_attn (32 -> 96) at rank 4: 4 * (32 + 96) parameters an adapter
    assert per["n_params"]["n_adapters"] == 3 and per["n_params"]["adapters"] == 3 * 4 * (32 + 96)
    assert ad["n_params"]["n_adapters"] == 1 and ad["n_params"]["adapters"] == 4 * (32 + 96)
    assert per["forgetting"] == 0.0  # frozen backbone, an adapter per task
    assert seq["n_params"]["adapters"] == 0
    assert all(0.0 <= x <= 1.0 for r in (ad, per, seq) for x in r["matrix"][-1])
    bad = GPT2.replace('at = "c_attn"))\n  epochs', 'at = "nope"))\n  epochs')
    with pytest.raises(RunFailed) as err:
        expc.run(write(tmp_path / "b.exp", bad), cache=tmp_path / ".expc")
    failure = err.value.results.failure
    assert 'no module of the backbone matches at = "nope"' in failure["message"] and "c_attn" in failure["message"]
    normalized = GPT2.replace("data d = digits()", "data d = digits(normalize = true)")
    with pytest.raises(RunFailed) as err:
        expc.run(write(tmp_path / "n.exp", normalized), cache=tmp_path / ".expc")
    assert "task 0 (" in err.value.results.failure["message"]
    assert "reads features as token ids" in err.value.results.failure["message"]
