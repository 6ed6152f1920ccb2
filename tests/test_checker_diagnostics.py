"""Every kind of check-time diagnostic, asserted on its code, line, column and message, with real
operators (gpt2, finetune, text, split, arithmetic, perplexity, ties, ...)."""

from __future__ import annotations

import pytest

from expc.interpreter.compiler import compile
from expc.spec.diagnostics import CompileError, SourceCache, render

# Two valid declarations that most cases build on (lines 1 and 2).
HEAD = (
    'data d = text("corpus.txt")\n'
    "model base = gpt2(layers = 1, width = 16, heads = 2, context = 16)\n"
)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Write files into a fresh directory (the working directory, so diagnostics say `main.exp`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("one two\nthree four\n")

    def write(src: str, **files: str):
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        (tmp_path / "main.exp").write_text(src)
        return tmp_path / "main.exp"

    return write


def diagnostics(path):
    with pytest.raises(CompileError) as info:
        compile(path)
    return info.value.diagnostics


def summary(path):
    return [(d.code, d.span.file, d.span.line, d.span.col, d.message) for d in diagnostics(path)]


def test_valid_program_checks(project):
    path = project(
        HEAD
        + "param lr ~ loguniform(1e-4, 1e-2, default = 1e-3)\n"
        + "data parts = split(d, test = 0.5)\n"
        + "train m = finetune(base, parts.train, steps = 2, lr = lr, batch = 1)\n"
        + "merge dem = base + 0.5 * (m - base)\n"
        + "eval e = perplexity(dem, parts.test)\n"
    )
    program = compile(path).program
    assert program.decls == ["d", "base", "parts", "m", "dem", "e"]


# ---- names ---------------------------------------------------------------------------------------


def test_unknown_name_with_did_you_mean(project):
    path = project(HEAD + "train m = finetune(bse, d, steps = 1, lr = 0.1, batch = 1)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.span.end_col, d.message) == (
        "E201", 3, 20, 23, "unknown name 'bse'")
    assert d.hint == "did you mean 'base'?"


def test_duplicate_name_points_at_both(project):
    path = project(HEAD + 'data d = text("corpus.txt")\n')
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.message) == ("E204", 3, 6, "'d' is declared twice")
    assert [(m, s.line, s.col) for m, s in d.notes] == [("first declared here", 1, 6)]


def test_param_and_declaration_share_one_namespace(project):
    path = project(HEAD + "param d = 1\n")
    assert summary(path) == [("E204", "main.exp", 3, 7, "'d' is declared twice")]


def test_unknown_statement_keyword(project):
    path = project(HEAD + "modle m = gpt2(layers = 1, width = 16, heads = 2, context = 16)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.message) == ("E202", 3, 1, "unknown statement keyword 'modle'")
    assert d.hint == "did you mean 'model'?"


def test_unknown_operator(project):
    path = project(HEAD + "train m = fintune(base, d, steps = 1, lr = 0.1, batch = 1)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.message) == ("E206", 3, 11, "unknown operator 'fintune'")
    assert "'finetune'" in d.hint


def test_block_form_needs_an_operator_named_like_the_kind(project):
    path = project(HEAD + "model g {\n  layers = 1\n}\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col) == ("E203", 3, 1)
    assert d.message == "'model' has no block form: no operator is named 'model'"


def test_operator_used_as_a_value(project):
    path = project(HEAD + "model m = gpt2\n")
    assert summary(path) == [("E206", "main.exp", 3, 11, "'gpt2' is an operator: call it")]


# ---- arguments -----------------------------------------------------------------------------------


def test_unknown_field(project):
    path = project(HEAD + "train m = finetune(base, d, step = 1, lr = 0.1, batch = 1)\n")
    first, *rest = diagnostics(path)
    assert (first.code, first.span.line, first.span.col, first.message) == (
        "E402", 3, 29, "finetune() has no parameter 'step'")
    assert first.hint == "did you mean 'steps'?"


def test_wrong_arity(project):
    path = project(HEAD + "data p = split(d, 0.1, 3, 4)\n")
    assert summary(path) == [
        ("E404", "main.exp", 3, 27, "split() takes at most 3 positional arguments (data, test, seed), got 4")
    ]


def test_missing_argument(project):
    path = project(HEAD + "train m = finetune(base, d, lr = 0.1, batch = 1)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.message) == (
        "E403", 3, 11, "finetune() is missing the required argument 'steps'")
    assert d.hint == "finetune(model, data, steps, lr, batch, ...)"


def test_argument_given_twice(project):
    path = project(HEAD + "train m = finetune(base, d, model = base, steps = 1, lr = 0.1, batch = 1)\n")
    assert summary(path) == [("E405", "main.exp", 3, 29, "argument 'model' of finetune() is given twice")]


# ---- types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr,message,hint_part",
    [
        ("base * base", "cannot multiply a model and a model", "scale a model by a number"),
        ("1 + base", "cannot add an int and a model", "adds models to models"),
        ("0.5 - base", "cannot subtract a number and a model", "adds models to models"),
        ("d + base", "cannot add a data and a model", "adds models to models"),
        ("2 / base", "cannot divide an int by a model", "divided by a number"),
    ],
)
def test_merge_algebra_type_errors(project, expr, message, hint_part):
    path = project(HEAD + f"merge x = {expr}\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.span.end_col) == ("E301", 3, 11, 11 + len(expr))
    assert d.message == message
    assert hint_part in d.hint


@pytest.mark.parametrize("expr", ["base + base", "0.5 * base", "base * 0.5", "base / 2", "-base",
                                  "base + 0.5 * (base - base)"])
def test_merge_algebra_valid_forms(project, expr):
    compile(project(HEAD + f"merge x = {expr}\n"))


def test_type_error_deep_in_an_expression(project):
    path = project(HEAD + "merge x = base + 0.5 * (base * base)\n")
    assert summary(path) == [("E301", "main.exp", 3, 25, "cannot multiply a model and a model")]


def test_input_of_the_wrong_type(project):
    path = project(HEAD + "eval e = perplexity(d, d)\n")
    assert summary(path) == [("E301", "main.exp", 3, 21, "argument 'model' of perplexity() expects model, got data")]


def test_kind_mismatch_operator(project):
    path = project(HEAD + "eval x = gpt2(layers = 1, width = 16, heads = 2, context = 16)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col) == ("E302", 3, 1)
    assert d.message == "operator 'gpt2' cannot be declared as 'eval'; it belongs to model"
    assert d.hint == "write 'model x = gpt2(...)'"


def test_kind_mismatch_value(project):
    path = project(HEAD + "data x = base\n")
    assert summary(path) == [("E302", "main.exp", 3, 10, "'data x' must be data, episodes, split, stream or tensors, but its value is model")]


def test_unknown_member(project):
    path = project(HEAD + "data p = split(d)\ndata t = p.trian\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.message) == ("E208", 4, 12, "a value of type split has no member 'trian'")
    assert d.hint == "did you mean 'train'?"


def test_member_of_a_record_param(project):
    path = project(HEAD + "param cfg = {lr: 0.1}\n"
                   "train m = finetune(base, d, steps = 1, lr = cfg.lr, batch = 1)\n")
    node = compile(path).program.nodes["m"]
    assert node.args["lr"] == {"$param": "cfg", "path": ["lr"]}


def test_member_of_a_record_param_checks_its_value(project):
    path = project(HEAD + "param cfg = {lr: -0.1}\n"
                   "train m = finetune(base, d, steps = 1, lr = cfg.lr, batch = 1)\n")
    (d,) = diagnostics(path)
    assert d.code == "E401" and "'lr'" in d.message and "greater than 0" in d.message


def test_unknown_field_of_a_record_param(project):
    path = project(HEAD + "param cfg = {lr: 0.1}\n"
                   "train m = finetune(base, d, steps = 1, lr = cfg.rl, batch = 1)\n")
    (d,) = diagnostics(path)
    assert d.code == "E208" and d.message == "param 'cfg' has no field 'rl'" and d.hint == "fields: lr"


# ---- dependency cycles ---------------------------------------------------------------------------


def test_dependency_cycle_shows_the_cycle(project):
    path = project(HEAD + "merge a = b + base\nmerge b = c - base\nmerge c = a * 0.5\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col) == ("E205", 3, 7)
    assert d.message == "dependency cycle: a -> b -> c -> a"
    assert [(m, s.line) for m, s in d.notes] == [("'b' is declared here", 4), ("'c' is declared here", 5)]


def test_self_reference_is_a_cycle(project):
    path = project("param a = a + 1\n")
    assert summary(path) == [("E205", "main.exp", 1, 7, "dependency cycle: a -> a")]


# ---- values and ranges ---------------------------------------------------------------------------


def test_negative_learning_rate(project):
    path = project(HEAD + "train m = finetune(base, d, steps = 1, lr = -0.1, batch = 1)\n")
    assert summary(path) == [("E401", "main.exp", 3, 45,
                               "invalid value for 'lr' of finetune(): Input should be greater than 0 (got -0.1)")]


def test_negative_steps(project):
    path = project(HEAD + "train m = finetune(base, d, steps = -5, lr = 0.1, batch = 1)\n")
    assert summary(path) == [
        ("E401", "main.exp", 3, 37,
         "invalid value for 'steps' of finetune(): Input should be greater than or equal to 1 (got -5)")
    ]


def test_probability_above_one(project):
    path = project(HEAD + "merge t = ties(base, [base], density = 1.5)\n")
    assert summary(path) == [
        ("E401", "main.exp", 3, 40,
         "invalid value for 'density' of ties(): Input should be less than or equal to 1 (got 1.5)")
    ]


def test_split_fraction_above_one(project):
    path = project(HEAD + "data p = split(d, test = 1.5)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col) == ("E401", 3, 26)
    assert "a share must be below 1 and a count of examples a whole number (got 1.5)" in d.message


def test_value_computed_from_params_is_checked(project):
    path = project(HEAD + "param base_lr = 0.1\ntrain m = finetune(base, d, steps = 1, lr = base_lr - 0.2, batch = 1)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col) == ("E401", 4, 45)
    assert d.message.startswith("invalid value for 'lr' of finetune(): Input should be greater than 0")


def test_search_range_outside_a_fields_range(project):
    path = project(HEAD + "param lr ~ uniform(-1, 1, default = 0.1)\n"
                   "train m = finetune(base, d, steps = 1, lr = lr, batch = 1)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col) == ("E401", 4, 45)
    assert d.message == ("the search range of 'lr' [-1, 1] includes invalid values for 'lr' of finetune(): "
                         "Input should be greater than 0")
    assert [(m, s.line, s.col) for m, s in d.notes] == [("'lr' is declared here", 3, 7)]


def test_distribution_bounds(project):
    path = project("param w ~ uniform(1, 0)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line) == ("E401", 1)
    assert "lo must be below hi" in d.message


def test_param_without_default_and_without_search(project):
    path = project(HEAD + "param lr ~ loguniform(1e-4, 1e-2)\n"
                   "train m = finetune(base, d, steps = 1, lr = lr, batch = 1)\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col) == ("E311", 4, 11)
    assert d.message == "'m' needs param 'lr', which has no default and is not searched"
    assert [(m, s.line, s.col) for m, s in d.notes] == [("'lr' is declared here", 3, 7)]


def test_searched_param_needs_a_distribution(project):
    path = project("param w ~ 0.5\n")
    assert summary(path) == [("E301", "main.exp", 1, 11, "'param w ~' needs a distribution, got number")]


def test_division_by_zero(project):
    path = project("param a = 1 / 0\n")
    assert summary(path) == [("E303", "main.exp", 1, 11, "division by zero")]


# ---- experiment settings -------------------------------------------------------------------------


def test_unknown_experiment_setting(project):
    path = project("experiment e { seeed = 1 }\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.message) == ("E402", 1, 16, "unknown experiment setting 'seeed'")
    assert d.hint == "did you mean 'seed'?"


@pytest.mark.parametrize(
    "setting,col,message",
    [
        ("workers = 0", 26, "invalid value for 'workers' of experiment: Input should be greater than or equal to 1 (got 0)"),
        ("seed = -1", 23, "invalid value for 'seed' of experiment: Input should be greater than or equal to 0 (got -1)"),
        ('dtype = "f64"', 24, "invalid value for 'dtype' of experiment: Input should be 'float32', 'bfloat16' or "
                              "'float16' (got 'f64')"),
    ],
)
def test_experiment_setting_out_of_range(project, setting, col, message):
    path = project(f"experiment e {{ {setting} }}\n")
    assert summary(path) == [("E401", "main.exp", 1, col, message)]


# ---- files and imports ---------------------------------------------------------------------------


def test_missing_referenced_file(project, tmp_path):
    path = project('data d = text("nope.txt")\n')
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col, d.message) == ("E501", 1, 15, "file not found: 'nope.txt'")
    assert d.hint == f"paths are relative to the .exp file: looked for {tmp_path.resolve() / 'nope.txt'}"


def test_paths_are_relative_to_the_file_that_wrote_them(project, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "local.txt").write_text("x\n")
    (tmp_path / "sub" / "lib.exp").write_text('data here = text("local.txt")\n')
    path = project('import "sub/lib.exp"\ndata there = text("local.txt")\n')
    assert summary(path) == [("E501", "main.exp", 2, 19, "file not found: 'local.txt'")]


def test_missing_import(project):
    path = project('import "missing.exp"\n')
    assert summary(path) == [("E502", "main.exp", 1, 8, "imported file not found: missing.exp")]


def test_cyclic_import(project):
    path = project('import "a.exp"\n', **{"a.exp": 'import "b.exp"\n', "b.exp": '\nimport "a.exp"\n'})
    (d,) = diagnostics(path)
    assert (d.code, d.span.file, d.span.line, d.span.col) == ("E503", "b.exp", 2, 8)
    assert d.message == "import cycle: a.exp -> b.exp -> a.exp"


def test_import_of_the_main_file_is_a_cycle(project):
    path = project('import "main.exp"\n')
    assert summary(path) == [("E503", "main.exp", 1, 8, "import cycle: main.exp -> main.exp")]


def test_imported_declarations_are_visible(project):
    path = project('import "lib.exp"\nmodel m = base\n',
                   **{"lib.exp": "model base = gpt2(layers = 1, width = 16, heads = 2, context = 16)\n"})
    assert "base" in compile(path).program.nodes


def test_errors_in_an_imported_file_name_that_file(project):
    path = project('import "lib.exp"\n', **{"lib.exp": "param a = 1\nparam b = nope\n"})
    assert summary(path) == [("E201", "lib.exp", 2, 11, "unknown name 'nope'")]


# ---- reporting ---------------------------------------------------------------------------------


def test_independent_errors_are_reported_together(project):
    path = project(HEAD + "train m = finetune(bse, d, steps = 1, lr = 0.1, batch = 1)\n"
                   "modle q = base\n"
                   "eval e = perplexity(base, d, batch = 0)\n")
    got = sorted((d.code, d.span.line) for d in diagnostics(path))
    assert got == [("E201", 3), ("E202", 4), ("E401", 5)]


def test_rendered_diagnostic_shows_the_line_and_a_caret(project):
    path = project(HEAD + "train m = finetune(bse, d, steps = 1, lr = 0.1, batch = 1)\n")
    text = render(diagnostics(path), SourceCache())
    assert text.splitlines() == [
        "main.exp:3:20: error[E201]: unknown name 'bse'",
        "  3 | train m = finetune(bse, d, steps = 1, lr = 0.1, batch = 1)",
        "    |                    ^^^",
        "  = hint: did you mean 'base'?",
        "1 error",
    ]


def test_an_inline_value_cannot_wait_for_a_node(project):
    """`adam(lr = s.best.lr)`: a configuration value is fixed before anything runs, so a node's result
    inside one is an error at the argument that says what to do instead."""
    path = project(HEAD + "data dd = digits()\n"
                   "param lr ~ loguniform(1e-4, 1e-1, default = 1e-3)\n"
                   "train c = fit(mlp(), dd, steps = 5, optimizer = adam(lr = lr))\n"
                   "eval acc = accuracy(c, dd)\n"
                   "search s { objective = maximize(acc), trials = 2 }\n"
                   "train again = fit(mlp(), dd, steps = 5, optimizer = adam(lr = s.best.lr))\n")
    (d,) = diagnostics(path)
    assert (d.code, d.span.line, d.span.col) == ("E301", 8, 63)
    assert d.message == ("argument 'lr' of adam() cannot take the result of node 's': adam(...) is a configuration "
                         "value, fixed before anything runs")
