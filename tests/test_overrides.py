"""Command-line overrides are checked like values written in the file: applied to the syntax tree before
checking, they get the same diagnostics, at the uses in the file, with a note naming the override, and
`expc run` exits 2. Everything here stops at check time or runs --dry-run: nothing is computed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLES, write
from expc.interpreter.compiler import compile
from expc.interpreter.overrides import CMDLINE, OverrideError
from expc.interpreter.session import Session
from expc.spec.diagnostics import CompileError, Span

DEM = EXAMPLES / "dem.exp"

SMALL = """\
experiment small { seed = 0 }
param n ~ int(5, 50, default = 20)
param k = 3
data sums = arithmetic(n = n, digits = 2)
data parts = split(sums, test = 0.5)
data head = take(parts.train, k)
"""


def _in_file(edit: tuple[str, str]) -> list:
    """The diagnostics of dem.exp with the same value written in the file."""
    text = DEM.read_text(encoding="utf-8")
    assert edit[0] in text
    with pytest.raises(CompileError) as e:
        compile(DEM, text=text.replace(edit[0], edit[1], 1))
    return e.value.diagnostics


def _override_diags(overrides: list[str], file: Path, tmp_path: Path) -> list:
    with pytest.raises(OverrideError) as e:
        Session.open(file, overrides, tmp_path / "store")
    return e.value.diagnostics


@pytest.mark.parametrize("override, edit", [
    ("lr=-1", ("param lr = 3e-4", "param lr = -1")),
    ("lr=0", ("param lr = 3e-4", "param lr = 0")),
    ("steps=1.5", ("param steps = 150", "param steps = 1.5")),
    ("math.test=1.5", ("seed = 1), test = 0.1)", "seed = 1), test = 1.5)")),
])
def test_an_override_gets_the_diagnostics_of_the_same_value_in_the_file(run_cli, tmp_path, override, edit):
    expected = _in_file(edit)
    assert expected and all(d.code == "E401" for d in expected)
    got = _override_diags([override], DEM, tmp_path)
    assert [(d.code, d.span, d.message) for d in got] == [(d.code, d.span, d.message) for d in expected]
    key = override.split("=")[0]
    for d in got:
        assert d.span.file.endswith("dem.exp")
        (note,) = d.notes
        assert note[0].startswith(f"the override '{override}' sets ") and f"'{key.split('.')[-1]}'" in note[0]
        assert note[1] == Span(CMDLINE, 1, 1, 1, 1 + len(override))

    code, out, err = run_cli("run", DEM, override, "--dry-run", "--cache", tmp_path / "store")
    assert code == 2
    assert "internal error" not in err and "Traceback" not in err and "PlanError" not in err
    for d in expected:
        assert f"{d.span}: error[E401]: {d.message}" in err
    assert err.count(f"note: the override '{override}' sets ") == len(expected)
    assert f"(<command line>:1:1)\n  1 | {override}\n" in err
    assert f"{len(expected)} error" in err


def test_a_param_override_is_reported_at_every_use(tmp_path):
    got = _override_diags(["lr=-1"], DEM, tmp_path)
    # the four fine-tunes that read lr (dem.exp lines 30-33), where `lr = lr` is written
    assert [(d.span.line, d.span.col) for d in got] == [(30, 63), (31, 63), (32, 65), (33, 63)]
    assert all("Input should be greater than 0 (got -1)" in d.message for d in got)


def test_a_use_through_arithmetic_is_located_too(tmp_path):
    got = _override_diags(["steps=1.5"], DEM, tmp_path)
    assert len(got) == 4  # `steps = steps` three times, and `steps = 3 * steps`
    assert [d.span.line for d in got] == [30, 31, 32, 33]
    assert all(d.notes[0][0] == "the override 'steps=1.5' sets param 'steps'" for d in got)


def test_an_input_argument_cannot_be_overridden(run_cli, tmp_path):
    f = write(tmp_path / "small.exp", SMALL)
    (d,) = _override_diags(["head.data=x"], f, tmp_path)
    assert d.code == "E002" and d.span == Span(CMDLINE, 1, 1, 1, 12)
    assert d.message == ("'head.data' is an input of take(): its value comes from another node and cannot be "
                         "set on the command line")
    assert "the arguments you can set: n" in d.hint
    code, _, err = run_cli("run", f, "parts.data=sums", "--dry-run", "--cache", tmp_path / "store")
    assert code == 2 and "'parts.data' is an input of split()" in err and "internal error" not in err


def test_nodes_the_file_does_not_write_as_calls_are_not_offered(run_cli, tmp_path):
    # `merge dem = base + ...` is lowered to a node with a `models` argument the user never wrote
    code, _, err = run_cli("run", DEM, "dem.models=1", "--dry-run", "--cache", tmp_path / "store")
    assert code == 2
    assert "unknown override key 'dem.models'" in err and "internal error" not in err
    (hint,) = [line for line in err.splitlines() if "hint:" in line]
    assert "m_math.<argument>" in hint  # the declared operator calls are offered
    assert " dem." not in hint and "'dem." not in hint
    # nor are anonymous nodes (`math.arithmetic`) or their arguments
    code, _, err = run_cli("run", DEM, "math.arithmetic.n=5", "--dry-run", "--cache", tmp_path / "store")
    assert code == 2 and "unknown override key 'math.arithmetic.n'" in err


def test_unknown_keys_hint_at_settable_arguments_only(run_cli, tmp_path):
    f = write(tmp_path / "small.exp", SMALL)
    code, _, err = run_cli("run", f, "head.date=1", "--cache", tmp_path / "store")
    assert code == 2 and "'head' (take) has no argument 'date'" in err
    code, _, err = run_cli("run", f, "kk=1", "--cache", tmp_path / "store")
    assert code == 2 and "unknown override key 'kk'" in err and "did you mean 'k'?" in err


def test_accepted_overrides_bind_params_settings_and_arguments(tmp_path):
    s = Session.open(DEM, ["w_math=0.5", "lr=1e-3", "experiment.device=cpu", "seed=2", "sweep.trials=2",
                           "math.test=0.2"], tmp_path / "store")
    # the bindings a search reads (ctx.bindings): an overridden searched param stays fixed in it
    assert s.bindings == {"w_math": 0.5, "lr": 1e-3}
    p = s.program
    assert p.params["lr"].value == 1e-3
    assert p.params["w_math"].dist.args["default"] == 0.5 and p.params["w_code"].dist.args["default"] == 0.3
    assert p.settings.device == "cpu" and p.settings.seed == 2 and p.settings.name == "dem"
    assert p.nodes["sweep"].args["trials"] == 2 and p.nodes["math"].args["test"] == 0.2
    # the program is the file's otherwise
    plain = compile(DEM).program
    assert p.nodes["m_math"] == plain.nodes["m_math"] and p.nodes["base"] == plain.nodes["base"]


def test_a_value_the_file_does_not_write_is_added_and_checked_on_the_command_line(tmp_path):
    f = write(tmp_path / "small.exp", SMALL)
    s = Session.open(f, ["experiment.workers=2", "sums.seed=4"], tmp_path / "store")
    assert s.program.settings.workers == 2 and s.program.nodes["sums"].args["seed"] == 4
    (d,) = _override_diags(["experiment.workers=0"], f, tmp_path)
    assert d.code == "E401" and d.span == Span(CMDLINE, 1, 20, 1, 21) and "workers" in d.message
    # a file without an experiment block gets one
    g = write(tmp_path / "bare.exp", "data sums = arithmetic(n = 5, digits = 2)\n")
    assert Session.open(g, ["seed=3"], tmp_path / "store").program.settings.seed == 3


def test_a_searched_param_override_is_checked_against_its_distribution_and_its_uses(run_cli, tmp_path):
    f = write(tmp_path / "small.exp", SMALL)
    (d,) = _override_diags(["n=500"], f, tmp_path)
    assert d.code == "E002" and d.message == "bad override 'n=500': 'n' must be within [5, 50]"
    got = _override_diags(["n=7.5"], f, tmp_path)  # in range, but int() draws integers
    assert got and all(x.code == "E401" and x.span.file.endswith("small.exp") for x in got)
    assert all(x.notes[-1][0] == "the override 'n=7.5' sets param 'n'" for x in got)
    code, _, err = run_cli("run", f, "n=7.5", "--dry-run", "--cache", tmp_path / "store")
    assert code == 2 and "internal error" not in err


def test_the_last_value_of_a_key_wins(tmp_path):
    f = write(tmp_path / "small.exp", SMALL)
    s = Session.open(f, ["k=5", "k=4"], tmp_path / "store")
    assert s.bindings == {"k": 4} and s.program.params["k"].value == 4


def test_errors_of_the_file_itself_are_not_blamed_on_overrides(run_cli, tmp_path):
    f = write(tmp_path / "small.exp", SMALL.replace("param k = 3", "param k = 0"))
    with pytest.raises(CompileError) as e:
        Session.open(f, ["n=9"], tmp_path / "store")
    assert not isinstance(e.value, OverrideError) and not e.value.diagnostics[0].notes
    code, _, err = run_cli("run", f, "n=9", "--cache", tmp_path / "store")
    assert code == 1 and "override" not in err


def test_dry_run_explains_an_overridden_param(run_cli, tmp_path):
    f = write(tmp_path / "small.exp", SMALL)
    cache = tmp_path / "store"
    code, _, err = run_cli("run", f, "--cache", cache)
    assert code == 0, err
    code, out, err = run_cli("run", f, "--dry-run", "k=4", "--cache", cache)
    assert code == 0, err
    assert "param k changed: 3 -> 4" in out


# ---- arguments of inline values: NODE.FIELD.ARG=V, PARAM.ARG=V ---------------------------------------

INLINE = """\
param opt = adam(lr = 3e-3)
data d = split(digits(normalize = true), test = 0.2, seed = 0)
train clf = fit(mlp(hidden = [8]), d.train, optimizer = adam(lr = 3e-3), steps = 5)
train plain = fit(mlp(hidden = [8]), d.train, steps = 5)
train f2 = fit(mlp(hidden = [8]), d.train, optimizer = fop(optimizer = sgd(lr = 0.1)), steps = 5)
train viap = fit(mlp(hidden = [8]), d.train, optimizer = opt, steps = 5)
eval asr = attack_success(clf, d.test, attack = pgd(eps = 0.1, steps = 3), n = 20)
"""


def _args(program, node: str, field: str):
    from expc.spec.ir import to_wire

    return to_wire(program.nodes[node].args[field])


def test_an_argument_of_an_inline_value_is_set_through_its_path(tmp_path):
    f = write(tmp_path / "inline.exp", INLINE)
    s = Session.open(f, ["clf.optimizer.lr=0.01", "plain.optimizer.lr=0.02", "f2.optimizer.optimizer.lr=0.05",
                         "f2.optimizer.hyper_lr=1e-3", "asr.attack.steps=7", "opt.lr=0.5", "clf.model.hidden=[16]"],
                     tmp_path / "store")
    p = s.program
    assert _args(p, "clf", "optimizer") == {"$op": "adam", "lr": 0.01}
    assert _args(p, "clf", "model") == {"$op": "mlp", "hidden": [16]}
    # a value the file leaves at its default is written out, then set
    assert _args(p, "plain", "optimizer") == {"$op": "adam", "lr": 0.02}
    assert _args(p, "f2", "optimizer") == {"$op": "fop", "optimizer": {"$op": "sgd", "lr": 0.05}, "hyper_lr": 1e-3}
    assert _args(p, "asr", "attack") == {"$op": "pgd", "eps": 0.1, "steps": 7}
    from expc.spec.ir import to_wire

    assert to_wire(p.params["opt"].value) == {"$op": "adam", "lr": 0.5}
    # the same program as the value written in the file
    edited = compile(f, text=INLINE.replace("optimizer = adam(lr = 3e-3)", "optimizer = adam(lr = 0.01)")).program
    one = Session.open(f, ["clf.optimizer.lr=0.01"], tmp_path / "store").program
    assert _args(one, "clf", "optimizer") == _args(edited, "clf", "optimizer")
    assert _args(one, "asr", "model") == _args(edited, "asr", "model")  # downstream sees the new node


def test_paths_into_inline_values_get_located_diagnostics(run_cli, tmp_path):
    f = write(tmp_path / "inline.exp", INLINE)
    (d,) = _override_diags(["clf.optimizer=0.1"], f, tmp_path)
    assert d.code == "E002" and d.span == Span(CMDLINE, 1, 1, 1, 18)
    assert d.message == ("'clf.optimizer' is an inline value (adam(...)): set one of its arguments on the command "
                         "line, not the whole value")
    assert d.hint.startswith("e.g. 'clf.optimizer.lr=0.1'; its arguments: lr, betas")
    (d,) = _override_diags(["clf.optimizer.lx=1"], f, tmp_path)
    assert d.message == "'clf.optimizer' (adam) has no argument 'lx'" and "lr" in d.hint
    (d,) = _override_diags(["viap.optimizer.lr=0.1"], f, tmp_path)
    assert d.message == "'viap.optimizer' is the param 'opt' in the file: override its argument instead, 'opt.lr=0.1'"
    (d,) = _override_diags(["clf.data.x=1"], f, tmp_path)
    assert d.message == ("'clf.data' is not an inline value written as a call in the file: 'clf.data.x' names "
                         "nothing to set")
    # a bad value gets the diagnostic of the same value in the file, with a note naming the override
    (d,) = _override_diags(["clf.optimizer.lr=-1"], f, tmp_path)
    assert d.code == "E401" and "greater than 0" in d.message and d.span.file.endswith("inline.exp")
    assert d.notes[-1][0] == "the override 'clf.optimizer.lr=-1' sets argument 'lr' of 'clf' (optimizer)"
    (d,) = _override_diags(["plain.optimizer.lr=-1"], f, tmp_path)  # written out from the default: the command line
    assert d.code == "E401" and d.span.file == CMDLINE
    code, _, err = run_cli("run", f, "clf.optimizer.lr=-1", "--dry-run", "--cache", tmp_path / "store")
    assert code == 2 and "internal error" not in err
    code, out, err = run_cli("run", f, "clf.optimizer.lr=0.01", "--dry-run", "--cache", tmp_path / "store")
    assert code == 0, err
