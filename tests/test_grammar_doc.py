"""GRAMMAR.md cannot drift from the code: its grammar is the grammar file, its tables name every setting,
type, kind and diagnostic code, its merge section is runtime/merge/FORMULAS.md, and every `exp` snippet
parses, formats idempotently and (unless marked as a fragment) checks as a complete program."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from expc.interpreter.compiler import compile
from expc.spec.ir import Settings
from expc.spec.parser import parse
from expc.spec.printer import format_source
from expc.spec.types import KINDS, TYPES

from _astutil import strip

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "GRAMMAR.md").read_text(encoding="utf-8")
FRAGMENT = "<!-- fragment -->"


def _fenced(lang: str) -> list[tuple[int, str, bool]]:
    """(line, text, is_fragment) of every ```lang block."""
    out = []
    lines = DOC.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{lang}":
            fragment = i > 0 and lines[i - 1].strip() == FRAGMENT
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            out.append((i + 1, "\n".join(lines[i + 1 : j]) + "\n", fragment))
            i = j
        i += 1
    return out


def _rules(text: str) -> list[str]:
    """Grammar lines without comments and blank lines."""
    out = []
    for line in text.split("\n"):
        line = re.sub(r"(^|\s)//.*$", "", line).rstrip()
        if line:
            out.append(line)
    return out


def test_grammar_block_is_the_grammar_file():
    blocks = _fenced("lark")
    assert len(blocks) == 1, "GRAMMAR.md must have exactly one ```lark block"
    grammar = (ROOT / "spec" / "grammar.lark").read_text(encoding="utf-8")
    assert _rules(blocks[0][1]) == _rules(grammar), "copy spec/grammar.lark into GRAMMAR.md's ```lark block"


SNIPPETS = _fenced("exp")


def test_there_are_snippets():
    assert len(SNIPPETS) >= 8 and any(not frag for _, _, frag in SNIPPETS)


@pytest.mark.parametrize("line,text,fragment", SNIPPETS, ids=[f"line{s[0]}" for s in SNIPPETS])
def test_snippet_parses_and_formats_idempotently(line, text, fragment):
    tree = parse(text, f"GRAMMAR.md:{line}")
    out = format_source(text)
    assert format_source(out) == out
    assert strip(parse(out))[1] == strip(tree)[1]


@pytest.mark.parametrize("line,text", [(s[0], s[1]) for s in SNIPPETS if not s[2]],
                         ids=[f"line{s[0]}" for s in SNIPPETS if not s[2]])
def test_complete_snippet_checks(tmp_path, line, text):
    (tmp_path / "corpus.txt").write_text("one two\nthree four\n")
    path = tmp_path / "snippet.exp"
    path.write_text(text)
    compile(path)


def _emitted_codes() -> set[str]:
    codes = set()
    for folder in ("spec", "interpreter", "runtime", "expc"):
        for py in (ROOT / folder).rglob("*.py"):
            codes |= set(re.findall(r'"(E\d{3})"', py.read_text(encoding="utf-8")))
    return codes


def test_every_diagnostic_code_is_documented():
    section = DOC.split("## Diagnostics", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(E\d{3})` \|", section, re.M))
    emitted = _emitted_codes()
    assert emitted - documented == set(), "codes the code emits but GRAMMAR.md does not list"
    assert documented - emitted == set(), "codes GRAMMAR.md lists but nothing emits"


def test_settings_types_and_kinds_are_documented():
    for name in Settings.model_fields:
        if name != "name":
            assert f"| `{name}` |" in DOC, f"experiment setting {name} is not in the settings table"
    for t in TYPES:
        if t != "any":
            assert f"`{t}`" in DOC, f"type {t} is not documented"
    for kind in KINDS:
        assert f"| `{kind}` |" in DOC, f"kind {kind} is not in the kinds table"


def test_merge_section_is_formulas_md():
    formulas = ROOT / "runtime" / "merge" / "FORMULAS.md"
    assert "## Merge operators" in DOC
    if not formulas.exists():
        pytest.skip("runtime/merge/FORMULAS.md is not written yet")
    lines = formulas.read_text(encoding="utf-8").rstrip("\n").split("\n")
    body = "\n".join("#" + l if l.startswith("#") else l for l in lines[1:]).strip("\n")
    folded = re.search(r"<!-- BEGIN runtime/merge/FORMULAS.md -->\n(.*)\n<!-- END runtime/merge/FORMULAS.md -->",
                       DOC, re.S)
    assert folded is not None
    assert folded.group(1) == body, ("runtime/merge/FORMULAS.md changed: copy it (without its title, each "
                                     "heading one level deeper) between the BEGIN/END markers in GRAMMAR.md")
