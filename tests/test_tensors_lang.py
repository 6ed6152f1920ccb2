"""Array data in the language: `tensors` at check time (split/take/mix keep the type, text and tensors
do not mix, a language model cannot read tensors) and through `expc run` (content-keyed user files,
errors at the argument that caused them). The operators themselves: tests/test_tensors.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write
from expc.interpreter.compiler import compile
from expc.runtime.registry import load_registry


def _types(tmp_path: Path, text: str) -> dict[str, str]:
    return {k: v.type for k, v in compile(write(tmp_path / "t.exp", text)).program.nodes.items()}


def _errors(tmp_path: Path, text: str):
    with pytest.raises(Exception) as err:
        compile(write(tmp_path / "t.exp", text))
    return err.value.diagnostics


def test_split_take_and_mix_keep_the_tensors_type(tmp_path):
    types = _types(tmp_path, (
        "data p = split(digits(), test = 0.1)\n"
        "data h = take(p.train, 5)\n"
        "data m = mix(p.train, invert(p.test), permute(p.test, seed = 1))\n"
        "data k = classes(p.train, labels = [3, 8])\n"
        "data w = mix(arithmetic(n = 10), take(arithmetic(n = 5), 2))\n"
    ))
    assert types["p"] == "split[tensors]" and types["h"] == "tensors" and types["m"] == "tensors"
    assert types["k"] == "tensors" and types["w"] == "data"  # text stays text
    assert load_registry().types.members("split[tensors]") == {"train": "tensors", "test": "tensors"}


def test_tensors_is_not_text(tmp_path):
    t = load_registry().types
    assert not t.is_subtype("tensors", "data") and not t.is_subtype("data", "tensors")
    assert t.kind_accepts("data", "tensors") and not t.kind_accepts("model", "tensors")


def test_mixing_text_with_tensors_is_a_check_error(tmp_path):
    (d,) = _errors(tmp_path, "data p = split(iris())\ndata m = mix(arithmetic(n = 10), p.test)\n")
    assert d.code == "E301" and (d.span.line, d.span.col) == (2, 34)
    assert d.message == "the items of 'sources' of mix() must have one type, got data and tensors"


def test_a_language_model_cannot_read_tensors(tmp_path):
    (d,) = _errors(tmp_path, (
        "data images = split(digits(normalize = true), test = 0.1)\n"
        "model base = gpt2(layers = 1, width = 8, heads = 1, context = 8)\n"
        "eval ppl = perplexity(base, images.test)\n"
    ))
    assert d.code == "E301" and (d.span.line, d.span.col) == (3, 29)
    assert "perplexity()" in d.message and "expects data" in d.message and "got tensors" in d.message


def test_tensor_transforms_reject_text(tmp_path):
    (d,) = _errors(tmp_path, "data k = classes(arithmetic(n = 10), labels = [1])\n")
    assert d.code == "E301" and "expects tensors, got data" in d.message


def test_params_are_checked_at_their_argument(tmp_path):
    (d,) = _errors(tmp_path, "data k = classes(iris(), labels = [1, 1])\n")
    assert "labels must be distinct" in d.message and (d.span.line, d.span.col) == (1, 35)
    (d,) = _errors(tmp_path, 'data a = arrays("missing.npz")\n')
    assert "missing.npz" in d.message and (d.span.line, d.span.col) == (1, 17)


def test_expc_types_lists_tensors(run_cli):
    code, out, _ = run_cli("types")
    assert code == 0 and any(line.startswith("tensors ") for line in out.splitlines())
    code, out, _ = run_cli("types", "tensors")
    assert code == 0 and "kinds: data" in out
    code, out, _ = run_cli("ops", "arrays")
    assert code == 0 and "label" in out and "tensors" in out


def test_checking_a_tensors_program_imports_no_array_library(tmp_path):
    import subprocess
    import sys

    np.savez(tmp_path / "pts.npz", x=np.zeros((4, 2)), y=np.arange(4) % 2)
    write(tmp_path / "rows.csv", "a,label\n1,0\n")
    f = write(tmp_path / "t.exp", "data p = split(digits(), test = 0.1)\ndata m = mix(p.train, invert(p.test))\n"
              'data a = arrays("pts.npz")\ndata b = arrays("rows.csv", label = "label")\n')
    code = (
        "import sys, io, contextlib\n"
        "from expc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['check', {str(f)!r}]) == 0\n"
        "    assert main(['ops', 'arrays']) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'sklearn', 'scipy', 'safetensors', 'torch'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# -- through `expc run` -----------------------------------------------------------------------------

PROGRAM = """\
data pts = arrays("pts.npz")
data parts = split(pts, test = 0.25, seed = 1)
data rows = arrays("rows.csv", label = "label")
data head = take(rows, 3)
data flowers = classes(iris(), labels = [2, 0])
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pts.npz", x=rng.normal(size=(20, 3)), y=np.arange(20) % 2)
    write(tmp_path / "rows.csv", "a,b,label\n" + "".join(f"{i},{i * 2},{i % 3}\n" for i in range(8)))
    write(tmp_path / "p.exp", PROGRAM)
    return tmp_path


def _run(run_cli, project: Path, program: str = "p.exp") -> tuple[int, dict, str]:
    code, out, err = run_cli("run", program, "--cache", project / "store", "--json", cwd=project)
    return code, (json.loads(out) if out.strip() else {}), err


def test_run_results_and_cache(run_cli, project):
    code, res, err = _run(run_cli, project)
    assert code == 0, err
    assert sorted(res["ran"]) == ["flowers", "flowers.iris", "head", "parts", "pts", "rows"]
    r = res["results"]
    assert r["parts"]["type"] == "split[tensors]" and r["parts"]["summary"] == "train n=15, test n=5 examples"
    assert r["rows"]["summary"] == "n=8 examples of 2 features, 3 classes, in [0, 14]"
    assert r["flowers"]["value"]["classes"] == 2 and r["flowers"]["value"]["n"] == 100
    assert r["pts"]["value"]["$artifact"] == "tensors" and r["pts"]["value"]["shape"] == [3]
    code, res, _ = _run(run_cli, project)
    assert code == 0 and res["ran"] == []


def test_editing_a_user_file_reruns_exactly_its_readers(run_cli, project):
    assert _run(run_cli, project)[0] == 0
    with np.load(project / "pts.npz") as f:
        x, y = f["x"], f["y"]
    x[0, 0] += 1.0
    np.savez(project / "pts.npz", x=x, y=y)
    code, res, _ = _run(run_cli, project)
    assert code == 0 and sorted(res["ran"]) == ["parts", "pts"]
    write(project / "rows.csv", "a,b,label\n" + "".join(f"{i},{i * 2},{i % 3}\n" for i in range(9)))
    code, res, _ = _run(run_cli, project)
    assert code == 0 and sorted(res["ran"]) == ["head", "rows"]
    assert res["results"]["rows"]["value"]["n"] == 9


def test_a_misnamed_label_is_shown_at_the_label_by_check_and_run(run_cli, project):
    np.savez(project / "pts.npz", x=np.zeros((4, 2)), labels=np.arange(4) % 2)
    write(project / "bad.exp", 'data rows = arrays("rows.csv", label = "lable")\ndata pts = arrays("pts.npz")\n')
    expected = ["bad.exp:1:40: error[E600]: rows: rows.csv:1: no column 'lable' (columns: a, b, label)",
                "hint: did you mean 'label'?",
                "bad.exp:2:12: error[E600]: pts: pts.npz: no array 'y' (arrays: x, labels)"]
    code, _, err = run_cli("check", "bad.exp", cwd=project)
    assert code == 1 and all(e in err for e in expected), err
    code, _, err = run_cli("run", "bad.exp", "--cache", project / "store", cwd=project)
    assert code == 1 and all(e in err for e in expected), err  # the run is refused at check time
