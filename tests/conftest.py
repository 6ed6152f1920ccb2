"""Shared fixtures. Tests that run `expc` in-process use `run_cli`; runs use a store under tmp_path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Call expc.cli.main(argv) in-process; returns (exit code, stdout, stderr)."""
    from expc.cli import main

    def go(*argv: str, cwd: Path | None = None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return go


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def expc_bin() -> list[str]:
    return [sys.executable, "-m", "expc"]


@pytest.fixture
def subprocess_env():
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def compile_errors(path: Path) -> list[tuple[str, int, int, str]]:
    """(code, line, column, message) of each diagnostic that compiling `path` raises."""
    from expc.interpreter.compiler import compile
    from expc.spec.diagnostics import CompileError

    with pytest.raises(CompileError) as info:
        compile(path)
    return [(d.code, d.span.line, d.span.col, d.message) for d in info.value.diagnostics]
