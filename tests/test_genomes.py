"""Architecture spaces (`mlps`) and the strategy's view of every param (runtime/search/genes.py): variation
always gives valid values (property tests), genomes are JSON and `mlp(...)` values, located diagnostics."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expc.interpreter.compiler import compile
from expc.runtime.ops.distributions import ChoiceParams, IntParams, LogUniformParams, UniformParams
from expc.runtime.ops.genomes import MlpsParams
from expc.runtime.ops.nets import MlpParams
from expc.runtime.search.genes import Genes
from expc.spec.diagnostics import CompileError

spaces = st.builds(
    lambda d0, dd, w0, wd, acts: MlpsParams(depth=[d0, d0 + dd], width=[w0, w0 + wd], activations=acts),
    st.integers(1, 4), st.integers(0, 3), st.integers(1, 64), st.integers(0, 200),
    st.lists(st.sampled_from(["relu", "tanh", "gelu", "silu", "sigmoid"]), min_size=1, max_size=5, unique=True),
)


@settings(max_examples=150, deadline=None)
@given(space=spaces, seed=st.integers(0, 2**32 - 1))
def test_mlps_variation_always_gives_valid_genomes(space, seed):
    rng = random.Random(seed)
    assert space.contains(space.default_genome()) is None
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(6):
        assert space.contains(a) is None and space.contains(b) is None, (a, b)
        before = json.dumps(a, sort_keys=True)
        child = space.mutate(a, rng)
        assert json.dumps(a, sort_keys=True) == before  # the argument is not changed
        c1, c2 = space.crossover(a, child, rng)
        for g in (child, c1, c2):
            assert space.contains(g) is None, g
            assert json.loads(json.dumps(g)) == g  # JSON, nothing else
            MlpParams.model_validate({k: v for k, v in g.items() if k != "$op"})  # an mlp(...) value
        assert space.distance(a, a) == 0 and space.distance(a, child) == space.distance(child, a) >= 0
        a, b = c1, c2


def test_mutation_explores_every_move():
    space = MlpsParams(depth=[1, 3], width=[8, 128], activations=["relu", "tanh"])
    rng = random.Random(0)
    g = space.default_genome()
    depths, acts, widths = set(), set(), set()
    for _ in range(200):
        g = space.mutate(g, rng)
        depths.add(len(g["hidden"]))
        acts.add(g["activation"])
        widths.update(g["hidden"])
    assert depths == {1, 2, 3} and acts == {"relu", "tanh"} and max(widths) >= 4 * min(widths)


def test_genomes_are_mlp_values_with_a_readable_description():
    space = MlpsParams(depth=[2, 2], width=[8, 32], activations=["tanh"])
    assert space.default_genome() == {"$op": "mlp", "hidden": [16, 16], "activation": "tanh"}
    assert space.value_type() == "net" and space.placeholder() == space.default_genome()
    assert space.describe({"$op": "mlp", "hidden": [8, 32], "activation": "tanh"}) == [
        "mlp: inputs -> 8 tanh -> 32 tanh -> classes"]
    assert space.contains({"$op": "mlp", "hidden": [8], "activation": "tanh"}) == "must have 2 to 2 hidden layers"
    assert space.contains({"$op": "mlp", "hidden": [8, 33], "activation": "tanh"}) == (
        "hidden widths must be integers in [8, 32]")
    assert space.contains({"$op": "cnn"}) == "is an mlp(hidden = [...], activation = ...) value"
    assert space.distance({"$op": "mlp", "hidden": [8, 32], "activation": "tanh"},
                          {"$op": "mlp", "hidden": [16, 32, 32], "activation": "relu"}) == 1 + 1 + 1
    with pytest.raises(ValueError, match="no grid"):
        space.grid(3)


numeric = {
    "lr": LogUniformParams(lo=1e-4, hi=1e-1),
    "w": UniformParams(lo=-1, hi=1, default=0.25),
    "k": IntParams(lo=2, hi=20, step=3),
    "opt": ChoiceParams(options=["adam", "sgd", "rmsprop"]),
    "arch": MlpsParams(depth=[1, 2], width=[4, 16]),
}


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_mixed_params_stay_in_their_spaces(seed):
    genes = Genes(numeric)
    rng = random.Random(seed)
    a, b = genes.initial(rng, default=False), genes.initial(rng, default=False)
    for _ in range(5):
        a = genes.mutate(a, rng)
        a, b = genes.crossover(a, b, rng)
        for x in (a, b):
            assert genes.contains(x) is None, x
            assert (x["k"] - 2) % 3 == 0 and isinstance(x["k"], int)
    assert genes.distance(a, a) == 0


def test_defaults_start_the_first_candidate():
    genes = Genes(numeric)
    first = genes.initial(random.Random(0), default=True)
    assert first["w"] == 0.25 and first["arch"] == numeric["arch"].default_genome()
    assert 1e-4 <= first["lr"] <= 1e-1  # no default: drawn


def test_numeric_mutation_is_gaussian_within_bounds():
    genes = Genes({"w": UniformParams(lo=0, hi=1)})
    rng = random.Random(1)
    steps = [genes.mutate({"w": 0.5}, rng)["w"] - 0.5 for _ in range(2000)]
    sd = math.sqrt(sum(s * s for s in steps) / len(steps))
    assert 0.08 < sd < 0.12  # sigma is a tenth of the range
    edge = [genes.mutate({"w": 1.0}, rng)["w"] for _ in range(200)]
    assert max(edge) == 1.0 and min(edge) >= 0.0  # clipped, never outside


# ---- check time ------------------------------------------------------------------------------------


def diagnostics(tmp_path, src: str):
    (tmp_path / "main.exp").write_text(src)
    with pytest.raises(CompileError) as info:
        compile(tmp_path / "main.exp")
    return [(d.code, d.span.line, d.span.col, d.message) for d in info.value.diagnostics]


def test_bad_spaces_are_located(tmp_path):
    assert diagnostics(tmp_path, 'param a ~ mlps(depth = [3, 1])\n'
                                 'param b ~ mlps(activations = ["relu", "rleu"])\n'
                                 'param c ~ mlps(width = [0, 8])\n') == [
        ("E401", 1, 24, "invalid value for 'depth' of mlps(): Value error, depth is a range [lo, hi] with lo <= hi, "
                        "got [3, 1]"),
        ("E401", 2, 30, "invalid value for 'activations' of mlps(): unknown activation 'rleu': did you mean "
                        "'relu'? (one of relu, tanh, gelu, silu, sigmoid)"),
        ("E401", 3, 24, "invalid value for 'width' of mlps(): Value error, width must lie within [1, 4096], got "
                        "[0, 8]"),
    ]


def test_a_genome_param_is_a_net_with_its_default(tmp_path):
    (tmp_path / "main.exp").write_text('param arch ~ mlps(depth = [1, 2], width = [8, 32])\n'
                                       'data d = split(digits(), test = 0.2)\n'
                                       'train clf = fit(arch, d.train, steps = 5)\n')
    program = compile(tmp_path / "main.exp").program
    assert program.params["arch"].type == "net"
    assert program.params["arch"].default == {"$op": "mlp", "hidden": [16], "activation": "relu"}
    assert program.nodes["clf"].type == "classifier"
