"""plan(program, bindings) -> Plan: decided before anything runs, frozen, inputs first, each node with
its validated params and key; a node that needs another node's result is pending until it exists."""

from __future__ import annotations

import dataclasses

import pytest

from expc.interpreter.compiler import compile
from expc.interpreter.planner import plan
from expc.runtime.registry import load_registry

PROGRAM = """\
param w ~ uniform(0, 1, default = 0.5)
data d = arithmetic(n = 40, digits = 2)
data p = split(d, test = 0.25)
data t = take(p.train, 10)
model base = gpt2(layers = 1, width = 16, heads = 2, context = 32)
eval e = loss(base, t)
search s { objective = minimize(e), trials = 2, over = [w] }
eval again = e(s.best)
"""


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "p.exp"
    path.write_text(PROGRAM)
    return compile(path).program


def test_the_plan_lists_inputs_first_with_validated_params_and_keys(program):
    p = plan(program, load_registry())
    names = [pn.display for pn in p]
    assert names.index("d") < names.index("p") < names.index("t") < names.index("e")
    assert names.index("base") < names.index("e")
    t = next(pn for pn in p if pn.display == "t")
    assert t.params.n == 10  # a params model instance
    d = next(pn for pn in p if pn.display == "d")
    assert d.params.n == 40 and d.params.digits == 2 and d.params.seed == 0  # defaults filled in
    assert len({pn.key for pn in p}) == len(p.nodes)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.nodes = ()


def test_a_node_that_needs_a_result_is_pending_until_it_exists(program):
    p = plan(program, load_registry())
    assert p.pending == (("again", "s"),)
    assert "again" not in [pn.display for pn in p]


def test_bindings_change_only_what_depends_on_them(program):
    a = {pn.display: pn.key for pn in plan(program, load_registry())}
    b = {pn.display: pn.key for pn in plan(program, load_registry(), {"w": 0.25})}
    assert a == b  # nothing but the search depends on w, and the search keys by definition
    c = {pn.display: pn.key for pn in plan(program, load_registry(), targets=["t"])}
    assert c == {k: a[k] for k in ("d", "p", "t")}


def test_a_seed_binding_replans_every_node_under_that_seed(program):
    from expc.interpreter.planner import SEED

    a = {pn.display: pn.key for pn in plan(program, load_registry())}
    b = {pn.display: pn.key for pn in plan(program, load_registry(), {SEED: 1})}
    c = {pn.display: pn.key for pn in plan(program, load_registry(), {SEED: 0})}
    assert a == c  # the experiment's own seed is 0
    assert set(a) == set(b) and all(a[k] != b[k] for k in a)
