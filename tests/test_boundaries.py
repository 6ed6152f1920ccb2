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
