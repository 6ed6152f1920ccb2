"""The expc command line: exit codes, JSON diagnostics, export round trip, graph, ops, runs, show, save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write
from expc.interpreter.compiler import compile
from expc.interpreter.export import export_yaml, load_yaml

GOOD = """\
experiment cli_demo { seed = 0 }
param n ~ int(5, 50, default = 20)
data sums = arithmetic(n = n, digits = 2)
data parts = split(sums, test = 0.5)
data head = take(parts.train, 3)
data small = head(n = 7)
"""


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "good.exp", GOOD)


def test_check_ok(run_cli, good):
    code, out, err = run_cli("check", good)
    assert code == 0, err
    assert "ok (4 nodes, 1 params)" in out


def test_check_errors_exit_1_with_location(run_cli, tmp_path):
    bad = write(tmp_path / "bad.exp", GOOD.replace("take(parts.train, 3)", "take(parts.trian, 3)"))
    code, out, err = run_cli("check", bad)
    assert code == 1
    assert "bad.exp:5:24: error[E208]: a value of type split has no member 'trian'" in err
    assert "did you mean 'train'?" in err
    assert "^^^^^" in err


def test_check_json(run_cli, tmp_path):
    bad = write(tmp_path / "bad.exp", "data x = arithmetc(n = 3)\n")
    code, out, _ = run_cli("check", "--json", bad)
    assert code == 1
    data = json.loads(out)
    (d,) = data["diagnostics"]
    assert d["code"] == "E206" and d["span"]["line"] == 1 and d["span"]["col"] == 10
    assert "arithmetic" in d["hint"]


def test_missing_file_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("check", tmp_path / "nope.exp")
    assert code == 2 and "file not found" in err


def test_unknown_command_is_usage_error(run_cli):
    code, _, err = run_cli("frobnicate")
    assert code == 2


def test_bad_override_exit_2_lists_valid_keys(run_cli, good, tmp_path):
    code, _, err = run_cli("run", good, "nn=3", "--cache", tmp_path / "c")
    assert code == 2
    assert "unknown override key 'nn'" in err and "did you mean 'n'" in err
    code, _, err = run_cli("run", good, "n=500", "--cache", tmp_path / "c")
    assert code == 2 and "must be within [5, 50]" in err
    code, _, err = run_cli("run", good, "head.n=-1", "--cache", tmp_path / "c")
    assert code == 2 and "greater than or equal to 1" in err


def test_run_show_runs_and_save(run_cli, good, tmp_path):
    cache = tmp_path / "store"
    code, out, err = run_cli("run", good, "--cache", cache, "--save", f"head={tmp_path / 'head_out'}")
    assert code == 0, err
    assert "6 ran, 0 cached" in out
    assert (tmp_path / "head_out" / "examples.jsonl").exists() or any((tmp_path / "head_out").iterdir())
    code, out, _ = run_cli("run", good, "--cache", cache, "--dry-run", "n=9")
    assert code == 0
    assert "sums" in out and "n changed: 20 -> 9" in out
    code, out, _ = run_cli("runs", "--cache", cache)
    assert code == 0 and "cli_demo" in out
    code, out, _ = run_cli("show", "--cache", cache)
    assert code == 0 and "head" in out and "small" in out
    assert f"data in {cache / 'runs' / '1' / 'head'}" in out  # results by name, under the run
    assert "node   op          status  times  total" in out  # what ran, per node


def test_export_round_trip(good):
    program = compile(good).program
    text = export_yaml(program)
    assert "arithmetic" in text
    assert load_yaml(text) == program


def test_export_cli(run_cli, good, tmp_path):
    code, out, _ = run_cli("export", good, "-o", tmp_path / "ir.yaml")
    assert code == 0
    assert load_yaml((tmp_path / "ir.yaml").read_text()) == compile(good).program


def test_graph(run_cli, good):
    code, out, _ = run_cli("graph", good)
    assert code == 0 and out.startswith("flowchart LR") and "-->" in out
    code, out, _ = run_cli("graph", good, "--format", "dot")
    assert code == 0 and '"sums" -> "parts"' in out and '"head" -> "small" [style=dashed]' in out


def test_ops(run_cli):
    code, out, _ = run_cli("ops")
    assert code == 0 and "arithmetic" in out and "uniform" in out
    code, out, _ = run_cli("ops", "arithmetic")
    assert code == 0 and "n: int" in out and ">= 1" in out
    code, _, err = run_cli("ops", "arithmetc")
    assert code == 2 and "did you mean 'arithmetic'" in err


def test_run_links_its_results_by_name(run_cli, good, tmp_path):
    cache = tmp_path / "store"
    code, out, err = run_cli("run", good, "--cache", cache)
    assert code == 0, err
    run_dir = cache / "runs" / "1"
    assert f"results in {run_dir}" in out
    # one link per declared node, to its directory in the store, holding that node's files
    assert sorted(p.name for p in run_dir.iterdir()) == ["head", "parts", "small", "sums"]
    assert (run_dir / "head" / "value.json").is_file()
    line = next(x for x in out.splitlines() if x.startswith("head "))
    assert line.startswith("head   data  take") and line.endswith(f" in {run_dir / 'head'}") and "n=3" in line


def test_odd_files_get_clear_messages(run_cli, tmp_path):
    (tmp_path / "bom.exp").write_bytes(b"\xef\xbb\xbfparam a = 1\n")
    code, out, err = run_cli("check", tmp_path / "bom.exp")
    assert code == 0, err  # a UTF-8 byte-order mark is fine
    (tmp_path / "bin.exp").write_bytes(b"param \xf1\xff = 1\n")
    code, out, err = run_cli("check", tmp_path / "bin.exp")
    assert code == 1 and "bin.exp is not UTF-8 text (byte 0xf1 at offset 6)" in err
    code, out, err = run_cli("fmt", tmp_path / "bin.exp")
    assert code == 2 and "is not UTF-8 text" in err and "internal error" not in err
    (tmp_path / "d").mkdir()
    (tmp_path / "t.exp").write_text('data x = text("d")\n')
    code, out, err = run_cli("check", tmp_path / "t.exp")
    assert code == 1 and "error[E501]: 'd' is a directory, not a file" in err


def test_save_a_split(run_cli, good, tmp_path):
    code, out, err = run_cli("run", good, "--cache", tmp_path / "store", "--save", f"parts={tmp_path / 'parts'}")
    assert code == 0, err
    saved = tmp_path / "parts"
    assert (saved / "train.jsonl").is_file() and (saved / "test.jsonl").is_file()
    assert json.loads((saved / "value.json").read_text())["value"]["train"]["$artifact"] == "data"
