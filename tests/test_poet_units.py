"""POET building blocks on the tiny point-reach environment: ES, mutation bounds, the minimal criterion,
PATA-EC, transfer acceptance rules and ANNECS."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expc.runtime.ops import envs as E
from expc.runtime.ops import poet as P
from expc.runtime.poet import es as ES
from expc.runtime.poet.annecs import annecs_curve
from expc.runtime.poet.driver import agent_json, settings_from
from expc.runtime.poet.loop import Poet
from expc.runtime.poet.novelty import knn_novelty, pata_ec_vector, tied_centered_ranks
from expc.runtime.poet.spec import EnvTemplate, Mutable, derive_rng
from expc.runtime.poet.workers import RolloutPool
from expc.runtime.registry import load_registry

REG = load_registry()


def inl(op, **kw):
    """An inline value as the compiler writes it into a call: {"$op": name, **arguments}."""
    return {"$op": op.name, **kw}


def built(value: dict):
    """What an operator receives for an inline value (as `Registry.built` makes it for the executor):
    validated, nested inline values built, then built by its own operator."""
    op = REG.get(value["$op"])
    p = REG.built(op.params.model_validate({k: v for k, v in value.items() if k != "$op"}), None)
    out = op.fn(p, None)
    return p if out is None else out


def poet_params(**kw):
    """The params the `poet` operator receives: validated in JSON form, inline values then built."""
    return REG.built(P.poet.params(**kw), None)


def point_env(**kw):
    return inl(E.point, target=inl(E.mutable, start=1, step=0.5, min=0.5, max=4), wind=inl(E.mutable, start=0, step=0.3, min=-1, max=1), **kw)


def make_poet(variant="enhanced", criterion=(-20, -6), fine_tune=True, population=16, **kw) -> Poet:
    p = poet_params(
        env=point_env(), agent=inl(P.mlp, hidden=[8]), es=inl(P.es, population=population, lr=0.05, eval_episodes=2),
        variant=variant, iterations=10, criterion=list(criterion), repro_threshold=-7, solved=-5,
        mutate=inl(P.every, n=5, children=6, admit=1, max_active=4), transfer=inl(P.every, n=3, fine_tune=fine_tune), **kw,
    )
    s = settings_from(p, seed=3)
    return Poet(s, agent_json(s), RolloutPool(1))


def controller(poet: Poet) -> np.ndarray:
    """A hand-made good policy for point-reach: a = tanh(3 tanh(-2 (x - target) - v))."""
    sizes = [2, 8, 1]
    w1, b1, w2, b2 = np.zeros((8, 2)), np.zeros(8), np.zeros((1, 8)), np.zeros(1)
    w1[0] = [-2.0, -1.0]
    w2[0, 0] = 3.0
    theta = np.concatenate([w1.ravel(), b1, w2.ravel(), b2])
    assert theta.size == sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return theta


# ---- ES ---------------------------------------------------------------------------------------


def test_centered_ranks():
    r = ES.centered_ranks([3.0, 1.0, 2.0, 10.0])
    assert r.tolist() == pytest.approx([1 / 6, -0.5, -1 / 6, 0.5])


def test_es_improves_an_agent_on_the_tiny_env():
    poet = make_poet()
    st_ = poet.new_state()
    pair = st_.pairs[0]
    seeds = list(range(100, 106))
    before = poet._evaluate([(pair.params, pair.theta, seeds)])[0]
    for it in range(25):
        poet.es_step(st_, it)
    after = poet._evaluate([(pair.params, pair.theta, seeds)])[0]
    assert after > before + 2.0, (before, after)


def test_mirrored_plan_shares_episode_seeds_and_gradient_points_uphill():
    es_cfg = settings_from(poet_params(env=point_env(), es=inl(P.es, population=8)), 0).es
    items = ES.plan_items(es_cfg, derive_rng(0, 1))
    assert [i[1] for i in items] == [1, -1] * 4
    assert all(items[2 * k][0] == items[2 * k + 1][0] and items[2 * k][2] == items[2 * k + 1][2] for k in range(4))
    # returns of a linear objective f(theta) = c . theta: the ES direction must correlate with c
    dim, sigma = 5, 0.1
    c = np.arange(1.0, dim + 1)
    from expc.runtime.poet.rollout import noise

    results = [[float(c @ (sign * sigma * noise(n, dim))), 1] for n, sign, _ in items]
    g = ES.gradient(es_cfg, items, results, sigma, dim)
    assert float(g @ c) > 0


def test_adam_steps_downhill():
    opt = ES.Adam.fresh(2)
    x = np.array([3.0, -2.0])
    for _ in range(300):
        x = x + opt.step(2 * x, 0.05)
    assert np.abs(x).max() < 0.1


# ---- mutation -----------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_mutation_respects_bounds(seed):
    env = built(inl(
        E.bipedal,
        roughness=inl(E.mutable, start=0, step=0.6, min=0, max=10),
        pit_gap=inl(E.mutable_range, start=[0, 0.8], step=0.4, max=8, enabled=False),
        stump_height=inl(E.mutable_range, start=[0, 0.4], step=0.2, max=[2, 3]),
    ))
    rng = np.random.default_rng(seed)
    params = env.initial()
    assert params["pit_gap"] is None and params["stump_height"] == [0.0, 0.4]
    for _ in range(60):
        child = env.mutate(params, rng)
        for m in env.mutables:
            assert m.within(child[m.name]), (m.name, child[m.name])
        assert child["pit_gap"] is not None  # the first mutation switches an absent interval on
        assert round(child["roughness"], 1) == child["roughness"]
        params = child
    lo, hi = params["stump_height"]
    assert 0 <= lo <= hi <= 3 and lo <= 2


def test_range_mutation_moves_by_steps():
    env = built(inl(E.gym, id="x", gap=inl(E.mutable_range, start=[0, 0.8], step=0.4, max=8)))
    rng = np.random.default_rng(0)
    seen = {tuple(env.mutate({"gap": [0.4, 0.8]}, rng)["gap"]) for _ in range(200)}
    # the upper end never drops below its start (0.8), the lower end never exceeds the upper one
    assert seen == {(0.8, 0.8), (0.0, 0.8), (0.4, 1.2), (0.0, 1.2), (0.8, 1.2)}


def test_mutable_rejects_start_outside_bounds():
    with pytest.raises(Exception, match="min <= start <= max"):
        E.mutable.params(start=30, step=1, min=5, max=20)


# ---- minimal criterion ----------------------------------------------------------------------------


@pytest.mark.parametrize("criterion, admitted", [((100.0, 200.0), 0), ((-1000.0, 0.0), 1)])
def test_minimal_criterion_filters_children(criterion, admitted):
    poet = make_poet(criterion=criterion)
    st_ = poet.new_state()
    st_.pairs[0].theta = controller(poet)
    st_.pairs[0].score = -5.0  # above repro_threshold
    record = {"admitted": [], "archived": []}
    poet.reproduce(st_, 5, record)
    assert record["children"] > 0
    assert record["passed_mc"] == (0 if admitted == 0 else record["children"])
    assert len(record["admitted"]) == admitted and len(st_.pairs) == 1 + admitted
    for a in record["admitted"]:
        assert criterion[0] <= a["score"] <= criterion[1]


def test_no_reproduction_below_threshold():
    poet = make_poet(criterion=(-1000.0, 0.0))
    st_ = poet.new_state()
    st_.pairs[0].score = -8.0  # below repro_threshold -7
    record = {"admitted": [], "archived": []}
    poet.reproduce(st_, 5, record)
    assert record["admitted"] == [] and "children" not in record


# ---- PATA-EC ----------------------------------------------------------------------------------------


def test_pata_ec_hand_computed():
    clip = (0.0, 40.0)
    e1 = pata_ec_vector([10, 50, 30], clip)  # clipped [10, 40, 30] -> ranks [0, 2, 1]
    e2 = pata_ec_vector([-5, 45, 45], clip)  # clipped [0, 40, 40] -> ranks [0, 1.5, 1.5]
    c = pata_ec_vector([20, 20, 60], clip)  # clipped [20, 20, 40] -> ranks [0.5, 0.5, 2]
    assert e1.tolist() == [-0.5, 0.5, 0.0]
    assert e2.tolist() == [-0.5, 0.25, 0.25]
    assert c.tolist() == [-0.25, -0.25, 0.5]
    d1, d2 = np.sqrt(0.875), np.sqrt(0.375)
    assert knn_novelty(c, [e1, e2], k=1) == pytest.approx(d2)
    assert knn_novelty(c, [e1, e2], k=5) == pytest.approx((d1 + d2) / 2)


def test_tied_ranks_make_equally_failed_envs_identical():
    # every agent fails both environments: clipped to the floor, the descriptors must coincide
    a = pata_ec_vector([-500, -900, -300], (-100, 100))
    b = pata_ec_vector([-800, -200, -700], (-100, 100))
    assert a.tolist() == b.tolist() == [0.0, 0.0, 0.0]
    assert tied_centered_ranks([1.0]).tolist() == [0.0]


# ---- transfer ---------------------------------------------------------------------------------------


def two_pairs(poet: Poet):
    """Target T (env target 1, agent that does nothing) and source S (env target 1.5, good agent)."""
    st_ = poet.new_state()
    t = st_.pairs[0]
    t.theta = np.zeros_like(t.theta)
    s = poet._pair(1, {"target": 1.5, "wind": 0.0}, 0, 0, controller(poet))
    st_.pairs.append(s)
    for p in st_.pairs:
        p.score = poet._evaluate([(p.params, p.theta, [7, 8])])[0]
        p.recent = [p.score]
    return st_, t, s


def test_enhanced_transfer_compares_with_max_of_last_five():
    poet = make_poet("enhanced")
    st_, t, s = two_pairs(poet)
    direct = poet._evaluate([(t.params, s.theta, poet._eval_seeds(6, 3, t.id))])[0]  # 6 == TRANSFER
    assert direct > t.score  # would beat the current score ...
    t.recent = [t.score, direct + 1.0, t.score]  # ... but not the best of the last five
    poet.steps = 0
    assert poet.transfer(st_, 3) == []
    # no direct transfer passed, so nothing was fine-tuned: only the 2 direct evaluations ran
    assert poet.steps == 2 * poet.s.es.eval_episodes * 30
    t.recent = [t.score]
    done = poet.transfer(st_, 3)
    assert [(d["target"], d["source"]) for d in done] == [(0, 1)]
    assert done[0]["score"] >= direct and t.score == done[0]["score"] and t.recent[-1] == t.score


def test_original_transfer_compares_with_current_score_and_fine_tunes_all():
    poet = make_poet("original")
    st_, t, s = two_pairs(poet)
    t.recent = [t.score, 0.0]  # ignored by the original rule
    poet.steps = 0
    done = poet.transfer(st_, 3)
    assert [(d["target"], d["source"]) for d in done] == [(0, 1)]
    # both directions were fine-tuned (population rollouts on top of the evaluations)
    assert poet.steps > 2 * poet.s.es.eval_episodes * 30 + 2 * poet.s.es.population * 30 - 1


def test_transfer_resets_the_optimizer_of_the_target():
    poet = make_poet("enhanced")
    st_, t, s = two_pairs(poet)
    t.opt.t = 17
    poet.transfer(st_, 3)
    assert t.opt.t == 0 and np.array_equal(t.opt.m, np.zeros_like(t.opt.m))


# ---- ANNECS -----------------------------------------------------------------------------------------


def test_annecs_on_a_scripted_history():
    history = [
        {"iteration": 0, "scores": {"0": 5.0}, "admitted": []},
        {"iteration": 1, "scores": {"0": 9.0, "1": 3.0}, "admitted": [{"id": 1}]},
        {"iteration": 2, "scores": {"0": 12.0, "1": 11.0, "2": 4.0}, "admitted": [{"id": 2}]},  # root solved: not counted
        {"iteration": 3, "scores": {"1": 5.0, "2": 10.0}, "admitted": []},  # >= counts
        {"iteration": 4, "scores": {"1": 12.0, "2": 3.0, "3": 15.0}, "admitted": [{"id": 3}]},  # 1 counted once
    ]
    assert annecs_curve(history, solved=10.0) == [0, 0, 1, 2, 3]
    assert annecs_curve(history, solved=100.0) == [0, 0, 0, 0, 0]


# ---- params validation ------------------------------------------------------------------------------


def test_schedule_extras_are_checked_per_field():
    with pytest.raises(Exception, match="does not take fine_tune"):
        P.poet.params(env=point_env(), mutate=inl(P.every, n=10, fine_tune=True))
    with pytest.raises(Exception, match="does not take children"):
        P.poet.params(env=point_env(), transfer=inl(P.every, n=10, children=3))
    with pytest.raises(Exception, match="criterion"):
        P.poet.params(env=point_env(), criterion=[5, 1])
    with pytest.raises(Exception, match="even"):
        P.es.params(population=15)


def test_gym_kwargs_are_numbers_or_mutables():
    gravity = inl(E.mutable, start=-10, step=1, min=-12, max=-1)
    v = built(inl(E.gym, id="LunarLanderContinuous-v3", gravity=gravity, wind_power=0.0))
    assert [(m.name, m.kind) for m in v.mutables] == [("gravity", "scalar")] and v.fixed == {"wind_power": 0.0}
    with pytest.raises(Exception, match="gravity"):
        E.gym.params(id="LunarLanderContinuous-v3", gravity={"$op": "es"})


def test_unknown_env_kwarg_is_an_op_error():
    from expc.runtime.api import OpError

    p = poet_params(env=inl(E.gym, id="Pendulum-v1", gravityy=inl(E.mutable, start=10, step=1, min=5, max=20)))
    with pytest.raises(OpError, match="gravityy") as e:
        agent_json(settings_from(p, 0))
    assert e.value.field == "env"


# ---- inline values reach the operator built -----------------------------------------------------------


def test_poet_receives_built_inline_values():
    p = P.poet.params(env=point_env(), es=inl(P.es, population=8), mutate=inl(P.every, n=5),
                      novelty=inl(P.pata_ec, k=3))
    assert p.env["$op"] == "point" and p.es["$op"] == "es"  # validation sees the JSON form
    b = REG.built(p, None)
    assert isinstance(b.env, EnvTemplate) and b.env.id == "expc/PointReach-v0" and b.env.horizon == 30
    assert [m.name for m in b.env.mutables] == ["target", "wind"]
    assert all(isinstance(m, Mutable) for m in b.env.mutables)
    assert b.env.mutables[0] == Mutable("target", "scalar", 1.0, 0.5, 0.5, 4.0, 1)
    assert isinstance(b.es, P.EsParams) and (b.es.population, b.es.lr) == (8, 0.01)
    assert isinstance(b.mutate, P.EveryParams) and isinstance(b.novelty, P.PataEcParams) and b.agent is None
    s = settings_from(b, 0)
    assert s.es is b.es and s.env is b.env and s.agent == P.MlpParams()
    # per-use defaults: every(5) for mutate keeps the default children, admit, max_active
    assert (s.mutate.n, s.mutate.children, s.mutate.admit, s.mutate.max_active) == (5, 8, 1, 40)
    assert (s.transfer.n, s.transfer.fine_tune, s.checkpoint.n) == (25, True, 25)
    assert s.novelty.kind == "pata_ec" and s.novelty.k == 3 and s.novelty.clip == [25.0, 340.0]  # clip: the criterion


def test_novelty_default_follows_the_variant():
    s = settings_from(poet_params(env=point_env(), variant="original"), 0)
    assert s.novelty == P.ParamsNoveltyParams()
    s = settings_from(poet_params(env=point_env(), criterion=[-3, 4]), 0)
    assert s.novelty == P.PataEcParams(clip=[-3, 4])


def test_mutable_range_builds_its_bounds():
    env = built(inl(E.bipedal, stump_height=inl(E.mutable_range, start=[0, 0.4], step=0.2, max=[2, 3], enabled=False)))
    assert env.fixed == {"roughness": 0.0} and env.horizon == 2000
    assert env.mutables == (Mutable("stump_height", "range", [0.0, 0.4], 0.2, [0.0, 0.4], [2.0, 3.0], 1, False),)
