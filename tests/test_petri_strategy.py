"""`petri(...)`, the Synthetic Petri Dish's multi-round loop as a search strategy: on its own with a known
fitness landscape (determinism, the dish's picks, what it records, diagnostics), and end to end in a small
`search { strategy = petri(...) }` over a real MLP on digits."""

from __future__ import annotations

import json

import pytest

from conftest import write
from expc.interpreter.session import Session
from expc.runtime.api import OpError
from expc.runtime.ops.distributions import UniformParams
from expc.runtime.ops.petri_strategy import PetriParams
from expc.runtime.search.genes import Genes
from expc.runtime.search.strategy import Told

SPACE = {"s": UniformParams(lo=0.1, hi=5), "o": UniformParams(lo=-2, hi=2)}


def fitness(b: dict) -> float:
    """A known landscape: the best motif is slope 3, offset 0.5."""
    return -((b["s"] - 3) ** 2) - (b["o"] - 0.5) ** 2


def rounds(seed: int, generations: int = 3, **cfg) -> tuple[list[list[dict]], list[dict]]:
    cfg = {"slope": "s", "offset": "o", "initial": 5, "screen": 40, "top": 2, "points": 10, "inner_steps": 10,
           "outer_steps": 15, **cfg}
    strategy = PetriParams(seed=seed, **cfg).start(SPACE)
    asked, stats = [], []
    for _ in range(generations):
        candidates = strategy.ask()
        asked.append(candidates)
        strategy.tell([Told(fitness(b)) for b in candidates])
        stats.append(strategy.generation_stats())
    return asked, stats


def test_generations_are_the_initial_motifs_then_the_dishs_top_picks():
    asked, stats = rounds(0)
    assert [len(g) for g in asked] == [5, 2, 2]
    genes = Genes(SPACE)
    assert all(genes.contains(c) is None for g in asked for c in g)
    assert [s["ground_truth"] for s in stats] == [5, 7, 9]  # each dish trains on everything told so far
    for s in stats:
        assert -1 <= s["dish_spearman"] <= 1 and s["dish_meta_loss"] > 0
        assert len(s["pick_scores"]) == 2 and s["pick_scores"] == sorted(s["pick_scores"])


def test_the_same_seed_and_results_give_the_same_generations():
    a, sa = rounds(3, 2)
    b, sb = rounds(3, 2)
    assert json.dumps([a, sa], sort_keys=True) == json.dumps([b, sb], sort_keys=True)
    assert json.dumps(rounds(4, 2)[0], sort_keys=True) != json.dumps(a, sort_keys=True)


def test_the_picks_are_the_lowest_scored_of_the_screen():
    """Recompute the screen: the same seeded candidates scored by a dish trained on the same ground truth."""
    from expc.runtime.search.petri import train_dish

    cfg = PetriParams(slope="s", offset="o", initial=4, screen=30, top=3, outer_steps=20, seed=1)
    strategy = cfg.start(SPACE)
    first = strategy.ask()
    strategy.tell([Told(fitness(b)) for b in first])
    picks = strategy.ask()
    # the strategy's generator after generation 0: the screened candidates are its next draws
    import random

    rng = random.Random(1)
    genes = Genes(SPACE)
    for _ in range(4):
        genes.initial(rng, default=False)
    screened = [genes.initial(rng, default=False) for _ in range(30)]
    dish, _ = train_dish(strategy._dish_config(), [cfg.motif(b) for b in first], [fitness(b) for b in first],
                         cfg.optimizer(), 20)
    scores = dish.scores([cfg.motif(b) for b in screened]).detach().tolist()
    best = sorted(range(30), key=lambda i: scores[i])[:3]
    assert picks == [screened[i] for i in best]


def test_failed_motifs_are_left_out_and_without_a_ranking_it_draws_at_random():
    strategy = PetriParams(slope="s", offset="o", initial=3, screen=10, top=2, outer_steps=5).start(SPACE)
    strategy.ask()
    strategy.tell([Told(None), Told(1.0), Told(None)])  # one finished motif: nothing to rank
    assert strategy.generation_stats() == {"ground_truth": 1, "dish_spearman": None}
    assert len(strategy.ask()) == 2
    strategy.tell([Told(2.0), Told(float("nan"))])
    assert strategy.generation_stats()["ground_truth"] == 2
    assert len(strategy.members()) == 5  # every evaluated motif, failed ones with no fitness
    assert sum(f is None for _, f in strategy.members()) == 3


def test_the_search_must_search_exactly_the_motifs_params():
    with pytest.raises(OpError) as e:
        PetriParams(slope="s").start(SPACE)
    assert e.value.field == "strategy"
    assert str(e.value).startswith("petri: the search's params must be exactly the motif's (s); it also searches "
                                   "'o', which the motif does not use (it searches o, s)")
    with pytest.raises(OpError, match="it does not search 'k'"):
        PetriParams(slope="s", offset="k").start(SPACE)
    with pytest.raises(ValueError, match=r"top \(5\) must not exceed screen \(4\)"):
        PetriParams(slope="s", screen=4, top=5)
    with pytest.raises(ValueError, match="name the searched params of the motif"):
        PetriParams()


PROGRAM = """\
experiment t {{ seed = 0 }}
param s ~ uniform(0.1, 5, default = 1)
param o ~ uniform(-2, 2, default = 0)
data d = split(digits(normalize = true), test = 0.3, seed = 0)
eval acc = accuracy(fit(mlp(hidden = [8], activation = sigmoid(slope = s, offset = o)), d.train, steps = 20), d.test)
search rounds {{
  objective = maximize(acc)
  strategy = {strategy}
  generations = 3
}}
"""


@pytest.mark.slow
def test_a_petri_search_end_to_end(tmp_path):
    f = write(tmp_path / "p.exp", PROGRAM.format(
        strategy='petri(slope = "s", offset = "o", initial = 4, screen = 30, top = 2, points = 10, inner_steps = 10, '
                 'outer_steps = 20, seed = 1)'))
    r = Session.open(f, cache=tmp_path / "store").run()
    assert r.status == "ok", r.failure
    data = r.results["rounds"]
    assert [sum(t["generation"] == g for t in data["trials"]) for g in range(3)] == [4, 2, 2]
    history = data["generations"]
    assert [h["ground_truth"] for h in history] == [4, 6, 8]
    assert all(-1 <= h["dish_spearman"] <= 1 for h in history)
    # members are every motif so far: the per-generation best is the best found yet
    best = [h["best"] for h in history]
    assert best == sorted(best) and best[-1] == pytest.approx(data["best_value"])
    assert 0 < data["best_value"] <= 1


def test_a_search_over_other_params_is_an_error_at_the_strategy(tmp_path):
    f = write(tmp_path / "p.exp", PROGRAM.format(strategy='petri(slope = "s", initial = 2, outer_steps = 2)')
              .replace("generations = 3", "generations = 1"))
    r = Session.open(f, cache=tmp_path / "store").run()
    assert r.status == "failed"
    assert "petri: the search's params must be exactly the motif's (s); it also searches 'o'" in r.failure.message
    assert r.failure.code == "E600" and r.failure.span.line == 8
