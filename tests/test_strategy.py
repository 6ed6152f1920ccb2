"""The evolution strategy on its own (no interpreter): determinism given the seed, elitism, selection that
improves a known objective, and the exact novelty rule."""

from __future__ import annotations

import json

import pytest

from expc.runtime.ops.distributions import UniformParams
from expc.runtime.ops.genomes import MlpsParams
from expc.runtime.ops.strategies import EvolutionParams, NoveltyParams
from expc.runtime.search.evolution import _rank_shares
from expc.runtime.search.genes import Genes
from expc.runtime.search.strategy import Told

SPACE = {"arch": MlpsParams(depth=[1, 3], width=[4, 64]), "w": UniformParams(lo=0, hi=1)}


def fitness(b: dict) -> float:
    """A known landscape: 80 hidden units in all, w = 0.3."""
    return -abs(sum(b["arch"]["hidden"]) - 80) - 20 * abs(b["w"] - 0.3)


def evolve(seed: int, generations: int, **cfg) -> list[list[dict]]:
    strategy = EvolutionParams(seed=seed, population=10, **cfg).start(SPACE)
    asked = []
    for _ in range(generations):
        candidates = strategy.ask()
        asked.append(candidates)
        strategy.tell([Told(fitness(b)) for b in candidates])
    return asked


def test_the_same_seed_gives_the_same_populations():
    a, b = evolve(3, 5), evolve(3, 5)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(evolve(4, 5), sort_keys=True) != json.dumps(a, sort_keys=True)
    genes = Genes(SPACE)
    assert all(genes.contains(c) is None for gen in a for c in gen)


def test_elites_are_kept_and_not_asked_again():
    strategy = EvolutionParams(seed=0, population=6, elite=2).start(SPACE)
    first = strategy.ask()
    assert len(first) == 6 and first[0]["arch"] == SPACE["arch"].default_genome()  # the default starts
    strategy.tell([Told(float(i)) for i in range(6)])
    assert len(strategy.ask()) == 4  # 2 elites carried over
    strategy.tell([Told(None)] * 4)  # failed children are never elites
    elites = [b for b, f in strategy.members() if f is not None]
    assert [json.dumps(b, sort_keys=True) for b in elites] == [json.dumps(first[i], sort_keys=True) for i in (5, 4)]


def test_selection_improves_a_known_objective():
    asked = evolve(0, 10)
    best = [max(fitness(b) for b in gen) for gen in asked]
    # with elitism the population's best never gets worse; the offspring must find better
    assert max(best[5:]) > best[0] + 5, best


def test_rank_shares():
    assert _rank_shares([1.0, 3.0, 2.0, None]) == [0.0, 1.0, 0.5, 0.0]
    assert _rank_shares([1.0, 1.0, 4.0]) == [0.25, 0.25, 1.0]  # ties share their mean rank
    assert _rank_shares([None, 2.0]) == [0.0, 1.0]


def test_the_novelty_rule():
    """novelty = mean distance to the k nearest behaviours (rest of the population + archive); score =
    (1 - weight) * fitness rank share + weight * novelty rank share."""
    cfg = EvolutionParams(seed=0, population=3, elite=0,
                          novelty=NoveltyParams(behaviour="b", k=1, weight=0.5, archive=4))
    strategy = cfg.start(SPACE)
    strategy.ask()
    strategy.tell([Told(3.0, behaviour=[0.0]), Told(2.0, behaviour=[1.0]), Told(1.0, behaviour=[5.0])])
    # novelty [1, 1, 4] -> shares [0.25, 0.25, 1]; fitness shares [1, 0.5, 0]
    assert [m.score for m in strategy.population] == pytest.approx([0.625, 0.375, 0.5])
    assert strategy.generation_stats()["novelty"] == pytest.approx(2.0)
    assert strategy.archive == [[0.0], [1.0], [5.0]]
    strategy.ask()
    strategy.tell([Told(1.0, behaviour=[5.0]), Told(1.0, behaviour=[9.0]), Told(1.0, behaviour=[2.0])])
    # the archive now holds [0], [1], [5] from before: nearest to [5] is the archive's [5] (distance 0)
    assert strategy.archive == [[5.0], [5.0], [9.0], [2.0]]  # first in, first out beyond 4
    assert [m.score for m in strategy.population] == pytest.approx([0.25, 0.75, 0.5])


def test_a_bad_configuration_is_refused():
    with pytest.raises(ValueError, match=r"elite \(6\) must be smaller than the population \(6\)"):
        EvolutionParams(population=6, elite=6)
