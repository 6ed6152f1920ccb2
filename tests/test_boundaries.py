"""The language tools never load the heavy libraries: checking, formatting and graphing a program
imports no torch, transformers, gymnasium, optuna, ray or matplotlib (they start in well under a second)."""

from __future__ import annotations

import subprocess
import sys

from conftest import EXAMPLES, ROOT

HEAVY = ("torch", "transformers", "gymnasium", "optuna", "ray", "matplotlib", "safetensors")


def test_check_fmt_graph_ops_import_nothing_heavy():
    files = [str(p) for p in sorted(EXAMPLES.glob("*.exp"))]
    code = (
        "import sys, io, contextlib\n"
        "from expc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['check', *{files!r}]) == 0\n"
        f"    assert main(['fmt', '--check', *{files!r}]) == 0\n"
        f"    assert main(['graph', {files[0]!r}]) == 0\n"
        "    assert main(['ops']) == 0\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_spec_and_interpreter_sources_never_import_torch():
    for folder in ("spec", "interpreter"):
        for path in (ROOT / folder).glob("*.py"):
            for line in path.read_text().splitlines():
                stripped = line.strip()
                assert not stripped.startswith(("import torch", "from torch")), f"{path}: {line}"


def _imported_modules(path) -> list[tuple[int, str]]:
    """(line, module) of every import statement in a file, at any depth (function-level ones too)."""
    import ast

    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def test_runtime_never_imports_the_interpreter():
    # runtime/ is what a program computes; what it means and where it runs (ctx.map's workers
    # included) is the interpreter's: operators reach it only through the Context they are given.
    files = sorted((ROOT / "runtime").rglob("*.py"))
    assert files
    bad = [f"{p.relative_to(ROOT)}:{line}: {m}" for p in files for line, m in _imported_modules(p)
           if m == "expc.interpreter" or m.startswith("expc.interpreter.")]
    assert not bad, "\n".join(bad)


def test_the_import_scan_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from expc.interpreter.executor import NodeFailed\n    import expc.interpreter\n")
    assert _imported_modules(f) == [(2, "expc.interpreter.executor"), (3, "expc.interpreter")]


def test_a_fully_cached_run_imports_nothing_heavy(tmp_path):
    # The first run merges (torch); a rerun finds every node in the store and loads what they recorded:
    # it never imports torch, and "auto" is never resolved to a device.
    import shutil

    shutil.copytree(EXAMPLES / "models", tmp_path / "models")
    shutil.copy(EXAMPLES / "merge.exp", tmp_path)
    argv = ["run", str(tmp_path / "merge.exp"), "--cache", str(tmp_path / "store")]
    subprocess.run([sys.executable, "-m", "expc", *argv], cwd=tmp_path, capture_output=True, check=True)
    code = (
        "import sys, io, contextlib\n"
        "from expc.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    assert main({argv!r}) == 0\n"
        "assert '0 ran, 5 cached' in out.getvalue(), out.getvalue()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY + ('numpy',)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
