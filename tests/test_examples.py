"""Every example checks, is already in canonical format, and formats idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLES
from expc.interpreter.compiler import compile
from expc.spec.printer import format_source

FILES = sorted(EXAMPLES.glob("*.exp"))


def test_there_are_examples():
    assert len(FILES) >= 1


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_example_checks(path: Path):
    program = compile(path).program
    assert program.decls, "an example declares something to run"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_example_is_canonical_and_idempotent(path: Path):
    text = path.read_text()
    once = format_source(text, str(path))
    assert once == text, f"{path.name} is not in canonical format: run `expc fmt {path}`"
    assert format_source(once, str(path)) == once


def test_readme_programs_check(tmp_path):
    import re

    from conftest import ROOT

    blocks = re.findall(r"```exp\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README shows at least one program"
    for i, text in enumerate(blocks):
        f = tmp_path / f"readme{i}.exp"
        f.write_text(text)
        compile(f)
        assert format_source(text, str(f)) == text, f"README program {i} is not in canonical format"
