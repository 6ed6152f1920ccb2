"""The language server's statement-by-statement parser gives exactly what spec.parser.parse gives
(the same trees, spans and comments; for a text that does not parse, the same diagnostics) while
parsing only the statements an edit touched."""

from __future__ import annotations

import random

import pytest

from conftest import EXAMPLES
from expc.interpreter.lsp.incremental import StatementParser, split_statements
from expc.spec.diagnostics import CompileError
from expc.spec.parser import parse

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.exp"))


def _same(parser: StatementParser, text: str, file: str = "f.exp") -> None:
    try:
        want = parse(text, file)
    except CompileError as e:
        with pytest.raises(CompileError) as got:
            parser(text, file)
        assert got.value.diagnostics == e.diagnostics
        return
    assert parser(text, file) == want


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_parse_to_the_same_module(path):
    text = path.read_text()
    p = StatementParser()
    _same(p, text)
    _same(p, text)  # from the cache
    _same(p, "\n\n" + text)  # every statement moved down
    _same(p, text.replace("\n", "\r\n"))


def test_split_statements_keeps_every_character_and_brackets_together():
    text = (EXAMPLES / "dem.exp").read_text()
    chunks = split_statements(text)
    assert "".join(c for _, c in chunks) == text
    report = next(c for _, c in chunks if c.startswith("report results {"))
    assert report.rstrip().endswith("}") and report.count("\n") > 20
    # a statement keyword at column 1 starts a statement even inside an unclosed bracket
    assert [ln for ln, _ in split_statements("data a = f(\ndata b = 1\n")] == [1, 2]
    # brackets inside strings and comments do not count
    assert [ln for ln, _ in split_statements('data a = f(")")\n# (\ndata b = 1\n')] == [1, 2, 3]


def test_an_edit_parses_only_the_statements_it_touched():
    text = (EXAMPLES / "dem.exp").read_text()
    p = StatementParser()
    p(text, "dem.exp")
    before = p.parsed
    edited = text.replace("steps = 2500", "steps = 2600")
    assert p(edited, "dem.exp") == parse(edited, "dem.exp")
    assert p.parsed - before == 1
    moved = "# a new first line\n" + edited
    assert p(moved, "dem.exp") == parse(moved, "dem.exp")
    assert p.parsed - before == 2  # the comment; every statement below it was moved, not parsed


def test_random_edits_agree_with_the_parser():
    """Edits a person makes while typing: characters and lines inserted and deleted anywhere, most of
    them leaving the file broken for a while."""
    rng = random.Random(0)
    p = StatementParser()
    alphabet = "abc =(),.\n{}[]\"#0123456789+-*/~:"
    for path in EXAMPLE_FILES:
        text = path.read_text()
        for _ in range(60):
            i = rng.randrange(len(text) + 1)
            r = rng.random()
            if r < 0.4:
                text = text[:i] + rng.choice(alphabet) + text[i:]
            elif r < 0.8:
                text = text[:i] + text[i + rng.randint(1, 3):]
            else:
                lines = text.split("\n")
                j = rng.randrange(len(lines))
                lines.insert(j, lines[rng.randrange(len(lines))])
                text = "\n".join(lines)
            _same(p, text, path.name)


def test_tolerant_parsing_keeps_the_statements_that_parse():
    text = "data a = arithmetic(n = 10)\ndata b = take(a, 5\nmodel m = gpt2(layers = 2)\neval e = \n"
    module, broken = StatementParser().tolerant(text, "f.exp")
    assert [s.name for s in module.stmts] == ["a", "m"]
    assert [line for line, _ in broken] == [2, 4]
