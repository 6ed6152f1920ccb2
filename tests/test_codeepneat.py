"""The codeepneat strategy, asked and told directly with synthetic fitness (no training): its networks
are valid, it is a function of its seed and what it was told, module and blueprint fitness are the
means the paper defines, both populations are speciated, and the populations evolve."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from expc.runtime.api import OpError
from expc.runtime.nets.build import build
from expc.runtime.ops import codeepneat as CD
from expc.runtime.ops import coevolved as CO
from expc.runtime.ops import distributions as DI
from expc.runtime.search.strategy import Told

SPACE = CO.coevolved.params()


def target(genome: dict) -> float:
    """A simple target: conv layers with 16 channels and kernel 3, in every module of the network
    (1.0 at four blueprint nodes of three such layers each)."""
    layers = [layer for n in genome["blueprint"]["nodes"] for layer in genome["modules"][n]["layers"]]
    return sum(1.0 - abs(x["channels"] - 16) / 16 if x["type"] == "conv" and x["kernel"] == 3 else 0.0
               for x in layers) / 12


def evolve(generations: int, fitness=target, **kw) -> tuple[list[list[dict]], list[list[float]], object]:
    strategy = CD.codeepneat.params(**kw).start({"arch": SPACE})
    asked, told = [], []
    for _ in range(generations):
        nets = [c["arch"] for c in strategy.ask()]
        f = [fitness(n) for n in nets]
        strategy.tell([Told(x) for x in f])
        asked.append(nets)
        told.append(f)
    return asked, told, strategy


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_every_assembled_network_is_valid_and_runs(seed):
    """Random fitness drives selection, crossover and add-node/add-edge mutations (raised here so that
    they happen often); every network asked is in the space and runs on digits-shaped input."""
    noise = random.Random(seed)
    asked, _, _ = evolve(4, fitness=lambda n: noise.random(), seed=seed, modules=10, blueprints=5, assemblies=5,
                         module_species=3, blueprint_species=2, add_node=0.6, add_edge=0.6)
    for nets in asked:
        for n in nets:
            assert SPACE.contains(n) is None, (SPACE.contains(n), n)
    arch = {"kind": "network", "blueprint": asked[-1][0]["blueprint"], "modules": asked[-1][0]["modules"]}
    out = build(arch, [1, 8, 8], 10, (0.0, 16.0), seed=0)(torch.rand(4, 1, 8, 8))
    assert out.shape == (4, 10)


def test_the_same_seed_gives_the_same_populations():
    a, _, sa = evolve(5, seed=3)
    b, _, sb = evolve(5, seed=3)
    c, _, _ = evolve(5, seed=4)
    assert a == b and a != c
    assert sa.modules.genomes == sb.modules.genomes and sa.blueprints.genomes == sb.blueprints.genomes
    assert sa.modules.species() == sb.modules.species()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_populations_evolve_towards_a_target(seed):
    """Best fitness at generation 10 well above generation 1, and above random sampling of the same
    space with the same number of networks (120)."""
    _, told, _ = evolve(10, seed=seed)
    rng = random.Random(seed)
    random_best = max(target(SPACE.sample(rng)) for _ in range(sum(len(t) for t in told)))
    first, last = max(told[0]), max(told[-1])
    print(f"seed {seed}: best {first:.3f} -> {last:.3f}; random search best {random_best:.3f}")
    assert last > 2 * first and last > random_best


def test_module_and_blueprint_fitness_are_means_over_their_networks():
    strategy = CD.codeepneat.params(seed=5, assemblies=20).start({"arch": SPACE})
    nets = strategy.ask()
    asked = list(strategy.asked)
    f = [float(i) for i in range(len(nets))]
    f[3] = None  # a failed network counts as the generation's worst
    strategy.tell([Told(x) for x in f])
    fit = [0.0 if x is None else x for x in f]
    mods, bps = strategy.fitness["modules"], strategy.fitness["blueprints"]
    used = {}
    for (bk, chosen), x in zip(asked, fit):
        for mk in set(chosen):
            used.setdefault(mk, []).append(x)
        assert bps[bk] == pytest.approx(sum(fit[i] for i, (b, _) in enumerate(asked) if b == bk)
                                        / sum(1 for b, _ in asked if b == bk))
    for mk, xs in used.items():
        assert mods[mk] == pytest.approx(sum(xs) / len(xs))
    assert len(used) < len(mods)  # some modules took part in no network: they got their species' mean


def test_both_populations_are_speciated_and_blueprints_name_living_module_species():
    _, _, s = evolve(6, seed=7)
    stats = s.generation_stats()
    assert sum(stats["module_species"]) == 24 and sum(stats["blueprint_species"]) == 12
    assert 1 <= len(stats["module_species"]) <= 4 and 1 <= len(stats["blueprint_species"]) <= 2
    assert stats["species"] == stats["module_species"]
    living = set(s.modules.species())
    assert all(n in living for bp in s.blueprints.genomes.values() for n in bp["nodes"])
    assert len(s.ask()) == 12


def test_the_best_of_each_species_survives():
    strategy = CD.codeepneat.params(seed=2).start({"arch": SPACE})
    strategy.ask()
    before = dict(strategy.modules.genomes)
    strategy.tell([Told(float(i)) for i in range(12)])
    best = max(strategy.fitness["modules"], key=lambda k: strategy.fitness["modules"][k])
    assert strategy.modules.genomes.get(best) == before[best]


def test_other_searched_params_are_hyperparameters_carried_by_the_blueprints():
    """lr rides on the blueprints, mutated and crossed over with them: it moves towards the target."""
    lr = DI.loguniform.params(lo=1e-4, hi=1e-1)
    strategy = CD.codeepneat.params(seed=1).start({"arch": SPACE, "lr": lr})
    gaps = []
    for _ in range(10):
        asked = strategy.ask()
        assert all(lr.contains(b["lr"]) is None and set(b) == {"arch", "lr"} for b in asked)
        gap = [abs(math.log10(b["lr"]) + 3) for b in asked]  # the target is lr = 1e-3
        strategy.tell([Told(target(b["arch"]) - g) for b, g in zip(asked, gap)])
        gaps.append(sum(gap) / len(gap))
    print(f"mean |log10(lr) + 3| per generation: {[round(g, 2) for g in gaps]}")
    assert gaps[-1] < 0.5 * gaps[0]
    assert all("params" in bp for bp in strategy.blueprints.genomes.values())


def test_codeepneat_needs_exactly_one_coevolved_param():
    other = CO.coevolved.params(module_size=[1, 1])
    with pytest.raises(OpError, match=r"codeepneat evolves exactly one coevolved\(\.\.\.\) param; 2 params are: a, b"):
        CD.codeepneat.params().start({"a": SPACE, "b": other})
    with pytest.raises(OpError, match=r"no searched param is coevolved"):
        CD.codeepneat.params().start({"lr": DI.uniform.params(lo=0.1, hi=1.0)})
    with pytest.raises(ValueError, match="module_species = 30 exceeds modules = 24"):
        CD.codeepneat.params(module_species=30)
