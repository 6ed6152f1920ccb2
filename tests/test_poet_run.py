"""Whole POET runs through the `poet` operator on the tiny point-reach environment: outputs, resume after
an interruption, worker-count and backend independence, the annecs operator; the POET BipedalWalker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from expc.runtime.api import Cancelled
from expc.runtime.ops import envs as E
from expc.runtime.ops import poet as P
from expc.runtime.poet.context import LocalContext
from expc.runtime.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
REG = load_registry()


def inl(op, **kw):
    """An inline value as the compiler writes it into a call: {"$op": name, **arguments}."""
    return {"$op": op.name, **kw}


def params(iterations=24, **kw):
    env = inl(E.point, target=inl(E.mutable, start=1, step=0.5, min=0.5, max=4), wind=inl(E.mutable, start=0, step=0.3, min=-1, max=1))
    base = dict(
        env=env, agent=inl(P.mlp, hidden=[8]), es=inl(P.es, population=12, lr=0.05, eval_episodes=2),
        iterations=iterations, mutate=inl(P.every, n=5, children=6, admit=1, max_active=3),
        criterion=[-20, -6], repro_threshold=-7, solved=-5.5,
        transfer=inl(P.every, n=3, fine_tune=True), novelty=inl(P.pata_ec, k=3, max_agents=4),
        checkpoint=inl(P.every, n=4),
    )
    base.update(kw)
    return REG.built(P.poet.params(**base), None)  # what the executor passes: inline values built


def run(tmp: Path, name: str, p, **ctx_kw):
    ctx = LocalContext(out_dir=tmp / name / "out", work_dir=tmp / name / "work", seed=0, **ctx_kw)
    return P.poet.fn(REG.built(p, None), ctx), ctx  # (built params are left as they are)


def outputs(r):
    log = json.loads((r.path / "log.json").read_text())
    agents = load_file(str(r.path / "agents.safetensors"))
    return log["history"], {k: v.tolist() for k, v in agents.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    r, ctx = run(tmp, "ref", params())
    return r, ctx


def test_run_grows_environments_transfers_and_writes_outputs(reference):
    r, ctx = reference
    assert r.iterations == 24
    assert len(r.archive) > 1  # children were admitted
    assert r.transfers > 0
    assert r.annecs > 0
    assert len(r.pairs) <= 3  # max_active
    assert any(e["archived_at"] is not None for e in r.archive)
    assert {"log.json", "agents.safetensors", "annecs.png", "scores.png", "envs.png"} <= {f.name for f in r.path.iterdir()}
    assert [s for s, _ in ctx.metrics["annecs"]] == list(range(24))
    for e in r.archive[1:]:  # every admitted env passed the minimal criterion
        adm = [a for h in json.loads((r.path / "log.json").read_text())["history"] for a in h["admitted"] if a["id"] == e["id"]]
        assert -20 <= adm[0]["score"] <= -6
    for pair in r.pairs:
        p = pair["params"]
        assert 0.5 <= p["target"] <= 4 and -1 <= p["wind"] <= 1


def test_annecs_operator_reads_the_run(reference):
    r, _ = reference
    m = P.annecs.fn(P.annecs.params(run=r, solved=-5.5))
    assert m["value"] == r.annecs and len(m["per_iteration"]) == 24
    assert m["per_iteration"] == sorted(m["per_iteration"])  # accumulated
    assert P.annecs.fn(P.annecs.params(run=r, solved=1e9))["value"] == 0


def test_resume_after_interruption_equals_uninterrupted(reference, tmp_path):
    r_ref, _ = reference
    with pytest.raises(Cancelled):
        run(tmp_path, "cut", params(), cancel_at=11)  # killed during iteration 11; checkpoint at 8
    ckpt = (tmp_path / "cut" / "work" / "latest").read_text()
    assert ckpt == "ckpt-00000008"
    ctx = LocalContext(out_dir=tmp_path / "cut" / "out2", work_dir=tmp_path / "cut" / "work", seed=0)
    r = P.poet.fn(params(), ctx)
    assert [s for s, _ in ctx.metrics["annecs"]] == list(range(8, 24))  # resumed, not restarted
    assert outputs(r) == outputs(r_ref)
    assert r.annecs == r_ref.annecs and r.transfers == r_ref.transfers


def test_changed_settings_do_not_resume_a_foreign_checkpoint(tmp_path):
    with pytest.raises(Cancelled):
        run(tmp_path, "a", params(iterations=6), cancel_at=5)
    ctx = LocalContext(out_dir=tmp_path / "b", work_dir=tmp_path / "a" / "work", seed=0)
    P.poet.fn(params(iterations=6, repro_threshold=-6.5), ctx)
    assert [s for s, _ in ctx.metrics["annecs"]][0] == 0


def test_two_workers_equal_one(reference, tmp_path):
    r_ref, _ = reference
    r, _ = run(tmp_path, "w2", params(), workers=2)
    assert outputs(r) == outputs(r_ref)


def test_original_variant_with_params_novelty_runs(tmp_path):
    r, _ = run(tmp_path, "orig", params(iterations=12, variant="original", novelty=inl(P.params, k=3)))
    assert r.iterations == 12 and len(r.archive) > 1


@pytest.mark.slow
def test_ray_backend_equals_local(reference, tmp_path):
    ray = pytest.importorskip("ray")
    r_ref, _ = reference
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        r, _ = run(tmp_path, "ray", params(), workers=2, backend="ray")
    finally:
        ray.shutdown()
    assert outputs(r) == outputs(r_ref)


# ---- the POET BipedalWalker -------------------------------------------------------------------------


def test_bipedal_terrain_has_pits_and_stumps():
    from expc.runtime.poet.envs import make_env

    flat = make_env({"id": "expc/BipedalWalkerPOET-v0", "kwargs": {"roughness": 0.0}, "horizon": 50})
    hard = make_env({"id": "expc/BipedalWalkerPOET-v0", "kwargs": {"roughness": 3.0, "pit_gap": [2.0, 3.0], "stump_height": [1.0, 2.0]}, "horizon": 50})
    flat.reset(seed=1)
    hard.reset(seed=1)
    u_flat, u_hard = flat.unwrapped, hard.unwrapped
    assert not u_flat.hardcore and u_hard.hardcore
    # the flat terrain is its 199 edges only; obstacles add polygon bodies
    assert len(u_flat.terrain) == 199 and len(u_hard.terrain) > 199 + 5
    assert np.ptp(u_flat.terrain_y) < 1e-9 < np.ptp(u_hard.terrain_y)
    obs, _ = hard.reset(seed=2)
    assert obs.shape == (24,)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, r, term, trunc, _ = hard.step(hard.action_space.sample())
        total, steps, done = total + r, steps + 1, term or trunc
    assert steps <= 50
    flat.close()
    hard.close()


def test_bipedal_example_runs_a_few_iterations(tmp_path):
    """examples/poet_bipedal.exp's settings, shrunk (population, horizon, iterations) to run here."""
    env = inl(
        E.bipedal,
        roughness=inl(E.mutable, start=0, step=0.6, min=0, max=10),
        pit_gap=inl(E.mutable_range, start=[0, 0.8], step=0.4, max=8, enabled=False),
        stump_height=inl(E.mutable_range, start=[0, 0.4], step=0.2, max=5, enabled=False),
        horizon=60,
    )
    p = P.poet.params(env=env, es=inl(P.es, population=4, eval_episodes=1), iterations=3,
                      mutate=inl(P.every, n=2, children=2), criterion=[-1000, 1000], repro_threshold=-1000)
    r, _ = run(tmp_path, "bw", p)
    assert r.iterations == 3 and len(r.archive) == 2
    child = r.archive[1]["params"]
    assert child["pit_gap"] == [0.0, 0.8] and child["stump_height"] == [0.0, 0.4]
    agents = load_file(str(r.path / "agents.safetensors"))
    assert agents["env0"].shape == (24 * 40 + 40 + 40 * 40 + 40 + 40 * 4 + 4,)


@pytest.mark.parametrize("name", ["poet.exp", "poet_bipedal.exp"])
def test_examples_check(name):
    proc = subprocess.run([sys.executable, "-m", "expc.cli", "check", str(ROOT / "examples" / name)], capture_output=True, text=True)
    if "No module named expc.cli" in proc.stderr:
        pytest.skip("expc CLI not available")
    assert proc.returncode == 0, proc.stdout + proc.stderr


POINT_EXP = """
experiment tiny_poet {
  seed = 0
  workers = 1
}

env reach = point(target = mutable(1, 0.5, 0.5, 4), wind = mutable(0, 0.3, -1, 1))

poet run {
  env = reach
  agent = mlp(hidden = [8])
  es = es(population = 12, lr = 0.05, eval_episodes = 2)
  iterations = 24
  mutate = every(5, children = 6, admit = 1, max_active = 3)
  criterion = [-20, -6]
  repro_threshold = -7
  solved = -5.5
  transfer = every(3, fine_tune = true)
  novelty = pata_ec(k = 3, max_agents = 4)
  checkpoint = every(4)
}

eval growth = annecs(run, solved = -5.5)
"""


def test_expc_run_end_to_end(reference, tmp_path):
    """The same run written in the language: the compiler's inline values give the same result."""
    r_ref, _ = reference
    exp = tmp_path / "tiny.exp"
    exp.write_text(POINT_EXP)
    store = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-m", "expc.cli", "run", str(exp), "--cache", str(store)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{r_ref.annecs}  (solved=-5.5)" in proc.stdout
    logs = list(store.rglob("log.json"))
    assert len(logs) == 1
    assert json.loads(logs[0].read_text())["history"] == outputs(r_ref)[0]
