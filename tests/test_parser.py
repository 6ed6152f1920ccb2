"""Grammar golden tests: source -> syntax tree shape, and syntax errors with their exact location and text."""

from __future__ import annotations

import pytest

from expc.spec import ast
from expc.spec.diagnostics import CompileError
from expc.spec.parser import parse

from _astutil import sexpr

# (source, the statements in prefix form)
GOLDEN = [
    # precedence and associativity
    ("param a = 1 + 2 * 3", ["(param a = (+ int:1 (* int:2 int:3)))"]),
    ("param a = (1 + 2) * 3", ["(param a = (* (+ int:1 int:2) int:3))"]),
    ("param a = 1 - 2 - 3", ["(param a = (- (- int:1 int:2) int:3))"]),
    ("param a = 1 - (2 - 3)", ["(param a = (- int:1 (- int:2 int:3)))"]),
    ("param a = 8 / 4 / 2 * 3", ["(param a = (* (/ (/ int:8 int:4) int:2) int:3))"]),
    ("param a = -x * 2", ["(param a = (* (neg x) int:2))"]),
    ("param a = -(x * 2)", ["(param a = (neg (* x int:2)))"]),
    ("param a = - -1", ["(param a = (neg (neg int:1)))"]),
    ("param a = 2 * -b", ["(param a = (* int:2 (neg b)))"]),
    ("param a = -s.best.w", ["(param a = (neg (. (. s best) w)))"]),
    # literals: numbers and strings keep their text
    ("param lr = 3e-4", ["(param lr = float:3e-4)"]),
    ("param lr = 1.5E+3", ["(param lr = float:1.5E+3)"]),
    ("param x = .5", ["(param x = float:.5)"]),
    ("param x = 2.", ["(param x = float:2.)"]),
    ("param n = 007", ["(param n = int:007)"]),
    ('param s = "a\\"b\\n"', ["(param s = str:'a\"b\\n')"]),
    ("param t = true\nparam f = false\nparam z = none", ["(param t = true)", "(param f = false)", "(param z = none)"]),
    ("param l = [1, 2.0, \"x\"]", ["(param l = [int:1 float:2.0 str:'x'])"]),
    ("param l = []", ["(param l = [])"]),
    ("param l = [1,\n 2,\n]", ["(param l = [int:1 int:2])"]),
    ('param r = {lr: 1e-3, name: "x"}', ["(param r = {lr:float:1e-3 name:str:'x'})"]),
    ('param r = {"a b": 1 c: 2}', ["(param r = {a b:int:1 c:int:2})"]),
    ("param r = {}", ["(param r = {})"]),
    # calls, members, re-instantiation
    ("data d = text(\"c.txt\")", ["(data d (call text str:'c.txt'))"]),
    ("train m = finetune(base, d, steps = 100, lr = 3e-4)",
     ["(train m (call finetune base d (= steps int:100) (= lr float:3e-4)))"]),
    ("train m = finetune(\n  base,\n  d,\n  steps = 100,\n)", ["(train m (call finetune base d (= steps int:100)))"]),
    ("data t = parts.train", ["(data t (. parts train))"]),
    ("data t = split(d, test = 0.1).train", ["(data t (. (call split d (= test float:0.1)) train))"]),
    ("eval e = ppl(w_math = 0.3)", ["(eval e (call ppl (= w_math float:0.3)))"]),
    ("eval e = ppl(sweep.best)", ["(eval e (call ppl (. sweep best)))"]),
    ("eval e = f(a)(b)", ["(eval e (call (call f a) b))"]),
    ("eval e = f()", ["(eval e (call f))"]),
    # merge algebra
    ("merge dem = base + 0.5*(m1 - base) + 0.3*(m2 - base)",
     ["(merge dem (+ (+ base (* float:0.5 (- m1 base))) (* float:0.3 (- m2 base))))"]),
    # statements
    ('import "common.exp"', ["(import 'common.exp')"]),
    ("param w ~ uniform(0, 1.5, default = 0.5)", ["(param w ~ (call uniform int:0 float:1.5 (= default float:0.5)))"]),
    ('experiment demo { seed = 0  device = "auto" }', ["(experiment demo (= seed int:0) (= device str:'auto'))"]),
    ("experiment demo {\n  seed = 0,\n  workers = 2,\n}", ["(experiment demo (= seed int:0) (= workers int:2))"]),
    ("experiment demo {}", ["(experiment demo )"]),
    ("search s { objective = e  n = 10 }", ["(search{} s (call search (= objective e) (= n int:10)))"]),
    ("report r {\n}", ["(report{} r (call report))"]),
    # newlines: blank lines and comments between statements, none inside brackets
    ("\n\n# c\nparam a = 1 # t\n\n\nparam b = 2\n\n", ["(param a = int:1)", "(param b = int:2)"]),
    ("param a = 1\r\nparam b = 2\r\n", ["(param a = int:1)", "(param b = int:2)"]),
    ("param a = f(1, # one\n  2)", ["(param a = (call f int:1 int:2))"]),
    ("", []),
]


@pytest.mark.parametrize("src,expected", GOLDEN, ids=[g[0][:40] for g in GOLDEN])
def test_golden(src, expected):
    module = parse(src, "t.exp")
    assert [sexpr(s) for s in module.stmts] == expected


def test_block_form_is_a_call_to_the_kind():
    (decl,) = parse("search s { n = 3 }").stmts
    assert isinstance(decl, ast.Decl) and decl.block
    assert isinstance(decl.expr, ast.Call) and decl.expr.func == ast.Name("search", decl.kind_span)
    (call_form,) = parse("search s = search(n = 3)").stmts
    assert not call_form.block and sexpr(call_form.expr) == sexpr(decl.expr)


def test_spans_and_comments():
    src = "# head\nmodel m = f(a,\n  b)  # tail\n\nparam x = 1\n"
    module = parse(src, "t.exp")
    m, x = module.stmts
    assert (m.span.line, m.span.col, m.span.end_line, m.span.end_col) == (2, 1, 3, 5)
    assert (m.kind_span.col, m.name_span.col) == (1, 7)
    assert (m.expr.args[1].span.line, m.expr.args[1].span.col) == (3, 3)
    assert (x.span.line, x.span.col) == (5, 1)
    assert [(c.text, c.line, c.col, c.own_line) for c in module.comments] == [
        ("# head", 1, 1, True),
        ("# tail", 3, 7, False),
    ]
    assert 4 in module.blank_lines and 2 not in module.blank_lines


def test_string_escapes():
    (p,) = parse('param s = "tab\\there \\\\ \\u00e9"').stmts
    assert p.expr.value == "tab\there \\ \u00e9"
    assert p.expr.raw == '"tab\\there \\\\ \\u00e9"'


# ---- syntax errors: (source, [(code, line, col, message)]) ---------------------------------------

ERRORS = [
    ("unterminated string", 'data d = text("abc)\n', [("E102", 1, 15, "unterminated string")]),
    ("unterminated string later", 'param a = 1\nparam b = "x\n', [("E102", 2, 11, "unterminated string")]),
    ("never closed", "model m = gpt2(layers = 2\n", [("E103", 1, 15, "'(' is never closed")]),
    ("not closed before next statement", "model m = gpt2(layers = 2\nmodel n = gpt2()\n",
     [("E103", 1, 15, "'(' opened at line 1 is not closed before name 'model' at line 2")]),
    ("unmatched close", "model m = gpt2())\n", [("E103", 1, 17, "unmatched ')': no bracket is open here")]),
    ("mismatched close", "param l = [1, 2)\n", [("E103", 1, 16, "')' does not match the '[' opened at line 1")]),
    ("mismatched brace", "search s {\n  n = f(1}\n", [("E103", 2, 10, "'}' does not match the '(' opened at line 2")]),
    ("missing = in a declaration", "model m gpt2()\n",
     [("E100", 1, 9, "unexpected name 'gpt2'; expected '=' or '{'")]),
    ("missing = in a param", "param lr 3\n", [("E100", 1, 10, "unexpected number 3; expected '=' or '~'")]),
    ("missing = in a block field", "search s { n 3 }\n", [("E100", 1, 14, "unexpected number 3; expected '='")]),
    ("bad character", "param lr = 3 $ 4\n", [("E101", 1, 14, "unexpected character '$'")]),
    ("bad character alone", "param lr = @\n", [("E101", 1, 12, "unexpected character '@'")]),
    ("positional after keyword", "model m = gpt2(layers = 2, 3)\n",
     [("E104", 1, 28, "a positional argument cannot follow a keyword argument")]),
    ("statement without keyword", "lr = 3\n", [("E100", 1, 4, "unexpected '='; expected a name")]),
    ("two statements on a line", "param a = 1 param b = 2\n",
     [("E100", 1, 13, "unexpected name 'param'; expected end of file or end of line")]),
    ("dangling operator at end of file", "param a =", [("E100", 1, 10, "unexpected end of file; expected an expression or a statement")]),
    ("invalid escape", 'param s = "\\q"\n', [("E102", 1, 11, 'invalid escape in string "\\q"')]),
    (
        "independent errors are reported together",
        "param a = 1 +\nparam ok = 1\nparam b = [2\nparam c = 3 $\nmodel m = gpt2(x = 1, 2)\n",
        [
            ("E100", 1, 14, "unexpected end of line; expected an expression or a statement"),
            # the unclosed bracket ends at the next line that starts a statement, which is still checked
            ("E103", 3, 11, "'[' opened at line 3 is not closed before name 'param' at line 4"),
            ("E101", 4, 13, "unexpected character '$'"),
            ("E104", 5, 23, "a positional argument cannot follow a keyword argument"),
        ],
    ),
    (
        "independent errors, each on its own statement",
        "param a = 1 +\nparam ok = 1\nparam c = 3 $\nmodel m = gpt2(x = 1, 2)\nparam d = )\n",
        [
            ("E100", 1, 14, "unexpected end of line; expected an expression or a statement"),
            ("E101", 3, 13, "unexpected character '$'"),
            ("E104", 4, 23, "a positional argument cannot follow a keyword argument"),
            ("E103", 5, 11, "unmatched ')': no bracket is open here"),
        ],
    ),
]


@pytest.mark.parametrize("name,src,expected", ERRORS, ids=[e[0] for e in ERRORS])
def test_syntax_errors(name, src, expected):
    with pytest.raises(CompileError) as info:
        parse(src, "bad.exp")
    got = [(d.code, d.span.line, d.span.col, d.message) for d in info.value.diagnostics]
    assert got == expected
    assert all(d.span.file == "bad.exp" for d in info.value.diagnostics)


def test_error_hints():
    def diag(src):
        with pytest.raises(CompileError) as info:
            parse(src, "bad.exp")
        return info.value.diagnostics[0]

    assert diag("lr = 3\n").hint == "a statement starts with a keyword: did you mean 'param lr = ...'?"
    assert diag("model m = gpt2(layers = 2\n").hint == "add ')'"
    assert diag("param l = [1, 2)\n").hint == "close it with ']'"
    assert "strings cannot span lines" in diag('param s = "abc\n').hint
    unclosed = diag("model m = gpt2(layers = 2\nmodel n = gpt2()\n")
    assert unclosed.notes and unclosed.notes[0][1].line == 2


def test_unterminated_string_underlines_the_rest_of_the_line():
    with pytest.raises(CompileError) as info:
        parse('data d = text("abc)\n', "bad.exp")
    span = info.value.diagnostics[0].span
    assert (span.line, span.col, span.end_line, span.end_col) == (1, 15, 1, 20)
