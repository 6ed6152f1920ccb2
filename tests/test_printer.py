"""The canonical printer: exact output for a set of inputs, idempotency, comments kept, round trip."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from expc.spec.parser import parse
from expc.spec.printer import MAX_WIDTH, format_source

from _astutil import strip

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").rglob("*.exp"))

# (input, canonical output)
CANONICAL = [
    # spacing around operators and keyword `=`, minimal parentheses
    ("param a=1+2*3", "param a = 1 + 2 * 3\n"),
    ("param a = ((1 + 2)) * 3", "param a = (1 + 2) * 3\n"),
    ("param a = a-(b-c)", "param a = a - (b - c)\n"),
    ("param a = (a-b)-c", "param a = a - b - c\n"),
    ("param a = a+(b+c)", "param a = a + (b + c)\n"),
    ("param a = 2*(a+b)", "param a = 2 * (a + b)\n"),
    ("param a = (2*a)+b", "param a = 2 * a + b\n"),
    ("param a = a/(b*c)", "param a = a / (b * c)\n"),
    ("param a = -(x)", "param a = -x\n"),
    ("param a = -(x+1)", "param a = -(x + 1)\n"),
    ("param a = - - x", "param a = -(-x)\n"),
    ("param a = a - -1", "param a = a - -1\n"),
    ("param a = (-x).y", "param a = (-x).y\n"),
    ("param a = (a+b).c", "param a = (a + b).c\n"),
    ("param a = (s.best).w", "param a = s.best.w\n"),
    ("merge dem = base + 0.5*(m1 - base) + 0.3*(m2-base)", "merge dem = base + 0.5 * (m1 - base) + 0.3 * (m2 - base)\n"),
    # literals exactly as written
    ("param lr = 3e-4", "param lr = 3e-4\n"),
    ("param x = 1.50E+3", "param x = 1.50E+3\n"),
    ("param x = .5", "param x = .5\n"),
    ("param n = 007", "param n = 007\n"),
    ('param s = "a\\tb\\"c"', 'param s = "a\\tb\\"c"\n'),
    ("param b = true\nparam c=false\nparam d=none", "param b = true\nparam c = false\nparam d = none\n"),
    # lists, records, calls
    ("param l = [ 1,2 , 3, ]", "param l = [1, 2, 3]\n"),
    ("param l=[]", "param l = []\n"),
    ('param r = {lr:1e-3,name:"x"}', 'param r = {lr: 1e-3, name: "x"}\n'),
    ('param r = {"a b": 1 c: 2}', 'param r = {"a b": 1, c: 2}\n'),
    ("param r={}", "param r = {}\n"),
    ("train m = finetune(base,d,steps=100,lr=3e-4)", "train m = finetune(base, d, steps = 100, lr = 3e-4)\n"),
    ("train m = finetune(\n  base,\n  d,\n)", "train m = finetune(base, d)\n"),
    ("eval e = ppl( w_math=0.3 )", "eval e = ppl(w_math = 0.3)\n"),
    ("eval e = f()", "eval e = f()\n"),
    ("data t = split(d,test=0.1).train", "data t = split(d, test = 0.1).train\n"),
    ("param w ~ uniform(0,1.5,default=0.5)", "param w ~ uniform(0, 1.5, default = 0.5)\n"),
    ('import   "common.exp"', 'import "common.exp"\n'),
    ('import "a\\\\b.exp"', 'import "a\\\\b.exp"\n'),
    # blocks: one field per line, the block form stays a block
    ('experiment demo { seed = 0  device = "auto", workers=2 }',
     'experiment demo {\n  seed = 0\n  device = "auto"\n  workers = 2\n}\n'),
    ("experiment demo {}", "experiment demo {}\n"),
    ("search s {objective=e,n=10,}", "search s {\n  objective = e\n  n = 10\n}\n"),
    ("report r {\n\n}", "report r {}\n"),
    ("search s = search(objective = e)", "search s = search(objective = e)\n"),
    # blank lines: at most one kept between statements, none at the start or end
    ("\n\nparam a = 1\n\n\n\nparam b = 2\nparam c = 3\n\n\n", "param a = 1\n\nparam b = 2\nparam c = 3\n"),
    ("search s {\n\n  a = 1\n\n\n  b = 2\n\n}", "search s {\n  a = 1\n\n  b = 2\n}\n"),
    ("", ""),
    ("\n\n", ""),
    # comments
    ("# only a comment", "# only a comment\n"),
    ("param a = 1   # trailing   ", "param a = 1  # trailing\n"),
    ("# c1\n\n# c2\nparam a = 1\n# end", "# c1\n\n# c2\nparam a = 1\n# end\n"),
    ("param a = 1 +  # inside\n  2", None),  # newline ends the statement: a syntax error (checked below)
    ("search s {  # header\n  # lead\n  a = 1  # t\n  # dangling\n}  # after",
     "search s {  # header\n  # lead\n  a = 1  # t\n  # dangling\n}  # after\n"),
    ("search s {\n  a = f(1,  # one\n    2)\n}", "search s {\n  a = f(\n    1,  # one\n    2,\n  )\n}\n"),
    ("search s {\n  a = 1 +  # moved\n    2\n}", "search s {\n  # moved\n  a = 1 + 2\n}\n"),
    ("eval e = perplexity(\n  dem,   # merged\n  # own\n  d\n)", "eval e = perplexity(\n  dem,  # merged\n  # own\n  d,\n)\n"),
    ("eval e = perplexity(dem, [a, # x\n b])", "eval e = perplexity(\n  dem,\n  [\n    a,  # x\n    b,\n  ],\n)\n"),
    ("eval e = f(a, (b  # x\n + c))", "eval e = f(\n  a,\n  # x\n  b + c,\n)\n"),
    ("eval e = (a +  # x\n b).c", "# x\neval e = (a + b).c\n"),
    ("eval e = f(  # h\n)", "eval e = f(  # h\n)\n"),
    ("eval e = f(\n  # only\n)", "eval e = f(\n  # only\n)\n"),
]


@pytest.mark.parametrize("src,expected", [c for c in CANONICAL if c[1] is not None], ids=lambda x: repr(x)[:50])
def test_canonical(src, expected):
    out = format_source(src, "t.exp")
    assert out == expected
    assert format_source(out, "t.exp") == out


def _long_call() -> str:
    return ("train m1 = finetune(base, data, steps = 100, lr = 3e-4, batch = 8, optimizer = \"adamw\", "
            "warmup = 10, weight_decay = 0.01)")


def test_long_statement_breaks_outermost_arguments():
    src = _long_call()
    assert len(src) > MAX_WIDTH
    out = format_source(src)
    assert out == (
        "train m1 = finetune(\n  base,\n  data,\n  steps = 100,\n  lr = 3e-4,\n  batch = 8,\n"
        '  optimizer = "adamw",\n  warmup = 10,\n  weight_decay = 0.01,\n)\n'
    )
    assert format_source(out) == out
    assert strip(parse(out)) == strip(parse(src))


def test_statement_of_exactly_max_width_stays_on_one_line():
    line = 'param l = [1, "' + "x" * (MAX_WIDTH - 17) + '"]'
    assert len(line) == MAX_WIDTH
    assert format_source(line) == line + "\n"
    longer = line.replace('"x', '"xx')
    assert format_source(longer) == 'param l = [\n  1,\n  "' + "x" * (MAX_WIDTH - 16) + '",\n]\n'


def test_long_record_and_member_chain_break():
    fields = ", ".join(f"field_{i}: {i}" for i in range(12))
    src = f"data t = split(d, test = 0.1, seed = 12345678, note = {{{fields}}}).train"
    out = format_source(src)
    assert out.splitlines()[0] == "data t = split("
    assert out.splitlines()[-1] == ").train"
    assert format_source(out) == out
    assert strip(parse(out)) == strip(parse(src))


def test_long_field_in_block_breaks_with_deeper_indent():
    src = "search s {\n  objective = " + _long_call().split(" = ", 1)[1] + "\n  n = 3\n}\n"
    out = format_source(src)
    lines = out.splitlines()
    assert lines[1] == "  objective = finetune("
    assert lines[2] == "    base,"
    assert "  )" in lines and lines[-2] == "  n = 3"
    assert all(len(line) <= MAX_WIDTH for line in lines)
    assert format_source(out) == out


def test_long_expression_without_call_is_left_on_one_line():
    src = "merge m = " + " + ".join(f"0.1 * (model_number_{i} - base)" for i in range(5))
    assert len(src) > MAX_WIDTH
    assert format_source(src) == src + "\n"


FILES_WITH_COMMENTS = [
    "# header\n\nexperiment demo { seed = 1 }  # e\nimport \"common.exp\"  # imp\n",
    "model m = f(a,  # one\n  # two\n  b, c = [1,  # three\n 2])  # four\n# five\n",
    "search s {\n  # lead\n  objective = e  # t\n\n  space = {a: 1,  # in record\n  b: 2}\n  # tail\n}\n",
    "param x = -(  # odd\n  1)\nparam y ~ choice(\n  1,\n  2,  # two\n)\n",
]


@pytest.mark.parametrize("src", FILES_WITH_COMMENTS)
def test_comments_are_kept(src):
    out = format_source(src)
    before = Counter(c.text.rstrip() for c in parse(src).comments)
    after = Counter(c.text.rstrip() for c in parse(out).comments)
    assert before == after
    assert format_source(out) == out
    assert strip(parse(out))[1] == strip(parse(src))[1]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_format_idempotently_and_round_trip(path):
    src = path.read_text()
    out = format_source(src, str(path))
    assert format_source(out, str(path)) == out
    assert strip(parse(out, str(path))) == _sorted_comments(strip(parse(src, str(path))), out, src)


def _sorted_comments(tree, out, src):
    """Hoisting may move a comment, never drop one: compare comments as a multiset."""
    name, stmts, comments = tree
    got = tuple(c.text.rstrip() for c in parse(out).comments)
    assert Counter(got) == Counter(comments)
    return (name, stmts, got)


def test_syntax_error_is_raised_not_printed():
    from expc.spec.diagnostics import CompileError

    with pytest.raises(CompileError):
        format_source("param a = 1 +  # inside\n  2", "t.exp")
