"""A new operator family plugs into the typed core without touching spec/ or interpreter/: a value type
with members and an algebra, operators returning and evaluating it, a search-like operator that
evaluates nodes under bindings, and a new distribution (tests/plugin_vectors.py), checked, planned
and run from a .exp file."""

from __future__ import annotations

import pytest

import plugin_vectors
from expc.interpreter.compiler import compile
from expc.interpreter.session import Session
from expc.runtime.registry import builtin_modules, collect
from expc.spec.diagnostics import CompileError

PROGRAM = """\
experiment vectors { seed = 0 }

param w ~ half(1.0, default = 0.25)

data a = vec([0, 0])
data b = vec([4, 2])
data m = a + w * (b - a)
eval d = distance(m, to = [2, 1])

search s = scan(d, over = [w], points = 5)
eval best = d(s.best)
"""


@pytest.fixture(scope="module")
def registry():
    return collect([*builtin_modules(), plugin_vectors])


def test_the_family_is_declared_in_its_module(registry):
    assert registry.types.get("vec").module == "plugin_vectors"
    assert registry.types.members("vec") == {"norm": "number", "size": "int"}
    assert registry.types.algebra("vec") == "vec_algebra"
    assert registry.types.kind_accepts("data", "vec") and not registry.types.kind_accepts("eval", "vec")
    assert registry.distribution({"$op": "half", "scale": 2.0}).grid(3) == [0.0, 1.0, 2.0]


def test_it_checks_with_types_members_and_algebra(tmp_path, registry):
    path = tmp_path / "v.exp"
    path.write_text(PROGRAM)
    program = compile(path, registry).program
    assert program.nodes["m"].op == "vec_algebra" and program.nodes["m"].type == "vec"
    assert program.params["w"].type == "number"
    assert program.nodes["s"].type == "scan"

    path.write_text(PROGRAM + "eval n = distance(m.norm, to = [1])\ndata z = m + 1\nsearch t = scan(d, over = [w], points = 1)\n"
                    "eval e = d(s.bset)\n")
    with pytest.raises(CompileError) as err:
        compile(path, registry)
    got = sorted((d.code, d.span.line, d.message) for d in err.value.diagnostics)
    assert got == [
        ("E208", 15, "a value of type scan has no member 'bset'"),
        ("E301", 12, "argument 'v' of distance() expects vec, got number"),
        ("E301", 13, "cannot add a vec and an int"),
        ("E401", 14, "invalid value for 'points' of scan(): Input should be greater than or equal to 2 (got 1)"),
    ]


def test_a_searched_param_outside_the_new_distribution_is_refused(tmp_path, registry):
    path = tmp_path / "v.exp"
    path.write_text(PROGRAM.replace("default = 0.25", "default = 3"))
    with pytest.raises(CompileError) as err:
        compile(path, registry)
    (d,) = err.value.diagnostics
    assert (d.code, d.span.line) == ("E401", 3) and "outside [0, 1.0]" in d.message


def test_it_plans_and_runs_and_reruns_only_what_the_bindings_change(tmp_path, registry):
    path = tmp_path / "v.exp"
    path.write_text(PROGRAM)
    session = Session.open(path, cache=tmp_path / "store", registry=registry)
    result = session.run()
    assert result.status == "ok", result.failure
    # m = (4w, 2w); distance to (2, 1) is |w - 0.5| * sqrt(20): the scan's grid 0, .25, .5, .75, 1 hits 0.5
    assert result.results["m"]["values"] == [1.0, 0.5]
    assert result.results["d"]["value"] == pytest.approx(0.25 * 20 ** 0.5)
    scan = result.results["s"]
    assert [r["x"] for r in scan["values"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert scan["best"] == {"w": 0.5} and scan["best_value"] == pytest.approx(0.0)
    assert result.results["best"]["value"] == pytest.approx(0.0)
    # the constant vectors ran once; the algebra and the distance ran once per distinct w
    ran = result.ran
    assert ran.count("a") == 1 and ran.count("b") == 1

    again = Session.open(path, cache=tmp_path / "store", registry=registry).run()
    assert again.status == "ok" and again.ran == []
    assert registry.types.summary("vec", result.results["m"]) == "vec of 2, norm 1.12"
