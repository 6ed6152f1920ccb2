"""Fuzzing the front end with mutated valid files: compiling a mutant either succeeds or raises a
CompileError whose diagnostics all point inside the file; it never raises anything else. A mutant that
parses also formats, idempotently, to text that parses to the same tree."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expc.interpreter.compiler import compile
from expc.interpreter.loader import display_path
from expc.runtime.registry import load_registry
from expc.spec.diagnostics import CompileError
from expc.spec.parser import parse
from expc.spec.printer import format_source

from _astutil import strip

# EXPC_FUZZ_EXAMPLES=5000 for a deeper run; the default keeps this file well under 20 s.
EXAMPLES_PER_TEST = int(os.environ.get("EXPC_FUZZ_EXAMPLES", "150"))
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").rglob("*.exp"))

SEEDS = {
    "main.exp": """\
# A small but complete program.
experiment fuzz { seed = 1  workers = 2 }
import "common.exp"
param lr = 3e-4
param w ~ uniform(0, 1.5, default = 0.5)

data parts = split(corpus, test = 0.25)
model base = gpt2(layers = 1, width = 16, heads = 2, context = 16)
train m1 = finetune(base, parts.train, steps = 2, lr = lr, batch = 2)  # tiny
train m2 = finetune(base, arithmetic(n = 20), steps = 2, lr = lr * 2, batch = 2)
merge dem = base + w * (m1 - base) + 0.3 * (m2 - base)
merge t = ties(base, [m1, m2], density = 0.5)
eval ppl = perplexity(dem, parts.test)
eval again = ppl(w = 0.25)
""",
    "common.exp": """\
data corpus = text("corpus.txt")  # relative to this file
param steps = 4
""",
    "blocks.exp": """\
experiment blocks {
  seed = 3
  device = "cpu"
  dtype = "float32"
}

param cfg = {lr: 1e-3, name: "x", sizes: [1, 2, 3]}
data d = arithmetic(n = 10, seed = 2)
model g = gpt2(
  layers = 1, width = 8,
  heads = 2,  # arguments may span lines
  context = 8,
)
train f = finetune(
  model = g,
  data = take(d, n = 5),
  steps = 1,
  lr = cfg.lr * 2,
  batch = -(-2),
)
eval l = loss(f, d)
""",
}

CHARS = list("()[]{}\"#=~,.:+-*/\\ \n\t0123456789eE_abz") + ["model", "param", "import", "true", "none", "\r\n"]
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[A-Za-z_]\w*|[0-9.]+(?:[eE][+-]?[0-9]+)?|\s+|.', re.S)


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory) -> list[tuple[Path, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "corpus.txt").write_text("one two three\nfour five six\n")
    files = []
    for name, text in SEEDS.items():
        path = root / name
        path.write_text(text)
        files.append((path, text))
    files += [(p, p.read_text()) for p in EXAMPLES]
    return files


def test_seeds_are_valid(seed_files):
    registry = load_registry()
    for path, text in seed_files:
        compile(path, registry, text=text)


@st.composite
def mutation(draw, text: str) -> str:
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["del_char", "ins_char", "dup_span", "del_token", "dup_token", "swap_lines"]))
        n = len(text)
        if kind == "del_char" and n:
            i = draw(st.integers(0, n - 1))
            text = text[:i] + text[i + 1 :]
        elif kind == "ins_char":
            i = draw(st.integers(0, n))
            text = text[:i] + draw(st.sampled_from(CHARS)) + text[i:]
        elif kind == "dup_span" and n:
            i = draw(st.integers(0, n - 1))
            j = draw(st.integers(i, min(n, i + 12)))
            text = text[:j] + text[i:j] + text[j:]
        elif kind in ("del_token", "dup_token"):
            toks = TOKEN.findall(text)
            if toks:
                k = draw(st.integers(0, len(toks) - 1))
                toks[k] = "" if kind == "del_token" else toks[k] * 2
                text = "".join(toks)
        elif kind == "swap_lines":
            lines = text.split("\n")
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
    return text


def _check_span(span, texts: dict[str, str], what: str) -> None:
    text = texts.get(span.file)
    if text is None:
        text = Path(span.file).read_text()
    lines = text.split("\n")
    assert 1 <= span.line <= len(lines), f"{what}: line {span.line} outside the file ({len(lines)} lines)"
    assert 1 <= span.col <= len(lines[span.line - 1]) + 1, f"{what}: column {span.col} outside line {span.line}"
    assert (span.end_line, span.end_col) >= (span.line, span.col), f"{what}: span ends before it starts"


@settings(max_examples=EXAMPLES_PER_TEST, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutants_compile_or_give_located_diagnostics(seed_files, data):
    path, text = data.draw(st.sampled_from(seed_files))
    mutant = data.draw(mutation(text))
    try:
        compile(path, text=mutant)
    except CompileError as e:
        assert e.diagnostics, "a CompileError without diagnostics"
        texts = {display_path(path.resolve()): mutant}
        for d in e.diagnostics:
            what = f"{d.code} {d.message!r}"
            if d.span is None:
                assert d.code[:2] in ("E0", "E5"), f"{what} has no location"
                continue
            _check_span(d.span, texts, what)
            for note, span in d.notes:
                if span is not None:
                    _check_span(span, texts, f"{what}, note {note!r}")
    else:
        return
    _check_format(mutant)


@settings(max_examples=EXAMPLES_PER_TEST, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutants_that_parse_format_idempotently(seed_files, data):
    _, text = data.draw(st.sampled_from(seed_files))
    _check_format(data.draw(mutation(text)))


def _check_format(text: str) -> None:
    try:
        before = parse(text, "m.exp")
    except CompileError:
        return
    out = format_source(text, "m.exp")
    assert format_source(out, "m.exp") == out
    after = parse(out, "m.exp")
    assert strip(after)[1] == strip(before)[1]
    assert Counter(c.text.rstrip() for c in after.comments) == Counter(c.text.rstrip() for c in before.comments)
