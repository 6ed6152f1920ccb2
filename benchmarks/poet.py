"""POET iterations per second: 1 vs N local workers, and local processes vs Ray.

    python benchmarks/poet.py                      # Pendulum setting of examples/poet.exp, 5 active pairs
    python benchmarks/poet.py --iterations 20 --workers 2 --ray
    python benchmarks/poet.py --ablation --seeds 0 1 2 3   # transfers on vs off, examples/poet.exp setting

The population is fixed (pairs are seeded, no reproduction or transfer during the timed part), so the
numbers measure the rollout engine: every iteration is one ES step and one evaluation per pair. Each
configuration runs the same iterations on a fresh state; the results are checked to be identical across
worker counts and backends (they must be: rollouts are pure functions of their seeds).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def build(pairs: int, population: int, env_id: str):
    from expc.runtime.ops import envs as E
    from expc.runtime.ops import poet as P
    from expc.runtime.poet.driver import agent_json, settings_from
    from expc.runtime.registry import load_registry

    def inl(op, **kw):  # as the compiler writes an inline value
        return {"$op": op.name, **kw}

    if env_id == "Pendulum-v1":
        env = inl(E.gym, id="Pendulum-v1", g=inl(E.mutable, start=10, step=1, min=5, max=20),
                  max_torque=inl(E.mutable, start=2, step=0.25, min=1, max=2), horizon=200)
        hidden = [16]
    else:
        env = inl(E.gym, id="LunarLanderContinuous-v3", gravity=inl(E.mutable, start=-10, step=1, min=-12, max=-1),
                  wind_power=inl(E.mutable, start=0, step=2, min=0, max=20), horizon=300)
        hidden = [16]
    p = P.poet.params(
        env=env, agent=inl(P.mlp, hidden=hidden), es=inl(P.es, population=population, eval_episodes=3),
        iterations=10**6, mutate=inl(P.every, n=10**6), transfer=inl(P.every, n=10**6),
    )
    s = settings_from(load_registry().built(p, None), seed=0)  # the executor builds the inline values
    agent = agent_json(s)
    return s, agent, pairs


def timed(s, agent, pairs: int, iterations: int, workers: int, backend: str) -> tuple[float, float, list]:
    from expc.runtime.poet.loop import EnvRecord, Poet
    from expc.runtime.poet.workers import RolloutPool

    ex = RolloutPool(workers, backend)
    try:
        poet = Poet(s, agent, ex)
        st = poet.new_state()
        rng = np.random.default_rng(1)
        for i in range(1, pairs):
            params = s.env.mutate(st.pairs[0].params, rng)
            st.pairs.append(poet._pair(i, params, 0, 0, st.pairs[0].theta.copy()))
            st.envs[i] = EnvRecord(i, params, 0, 0)
        poet.iterate(st)  # warm-up: worker start, env construction
        t = time.perf_counter()
        for _ in range(iterations):
            poet.iterate(st)
        dt = time.perf_counter() - t
    finally:
        ex.close()
    return iterations / dt, dt, [p.score for p in st.pairs]


def ablation_run(job: tuple[str, int, bool, int]) -> dict:
    """One run of the examples/poet.exp setting (Pendulum) or the point-reach setting of the tests,
    with transfers on or off (off: a transfer period longer than the run)."""
    import tempfile
    from pathlib import Path

    from expc.runtime.ops import envs as E
    from expc.runtime.ops import poet as P
    from expc.runtime.poet.context import LocalContext
    from expc.runtime.registry import load_registry

    env_name, seed, transfers, iterations = job

    def inl(op, **kw):  # as the compiler writes an inline value
        return {"$op": op.name, **kw}

    period = 5 if env_name == "pendulum" else 3
    transfer = inl(P.every, n=period if transfers else 10**7, fine_tune=True)
    if env_name == "pendulum":
        p = P.poet.params(
            env=inl(E.gym, id="Pendulum-v1", g=inl(E.mutable, start=10, step=1, min=5, max=20),
                    max_torque=inl(E.mutable, start=2, step=0.25, min=1, max=2), horizon=200),
            agent=inl(P.mlp, hidden=[16]), es=inl(P.es, population=16, sigma=0.1, lr=0.01, eval_episodes=3),
            iterations=iterations, mutate=inl(P.every, n=10, children=8, admit=1, max_active=5),
            criterion=[-1300, -950], repro_threshold=-1000, solved=-800, transfer=transfer,
            novelty=inl(P.pata_ec, k=5, clip=[-1300, -800]), checkpoint=inl(P.every, n=10**6),
        )
    else:
        p = P.poet.params(
            env=inl(E.point, target=inl(E.mutable, start=1, step=0.5, min=0.5, max=4), wind=inl(E.mutable, start=0, step=0.3, min=-1, max=1)),
            agent=inl(P.mlp, hidden=[8]), es=inl(P.es, population=12, lr=0.05, eval_episodes=2),
            iterations=iterations, mutate=inl(P.every, n=5, children=6, admit=1, max_active=3),
            criterion=[-20, -6], repro_threshold=-7, solved=-5.5, transfer=transfer,
            novelty=inl(P.pata_ec, k=3, max_agents=4), checkpoint=inl(P.every, n=10**6),
        )
    d = Path(tempfile.mkdtemp(prefix="poet-ablation-"))
    t = time.perf_counter()
    r = P.poet.fn(load_registry().built(p, None), LocalContext(out_dir=d / "out", work_dir=d / "work", seed=seed))
    return {"env": env_name, "seed": seed, "transfers_on": transfers, "annecs": r.annecs, "transfers": r.transfers,
            "envs": len(r.archive), "seconds": time.perf_counter() - t}


def ablation(env_name: str, seeds: list[int], iterations: int, processes: int) -> None:
    import multiprocessing as mp

    jobs = [(env_name, seed, on, iterations) for seed in seeds for on in (True, False)]
    with mp.get_context("spawn").Pool(processes) as pool:
        rows = pool.map(ablation_run, jobs, chunksize=1)
    print(f"transfer ablation: {env_name}, {iterations} iterations, seeds {seeds}")
    print(f"{'seed':>5}  {'transfers':<9}  {'ANNECS':>6}  {'#transfers':>10}  {'envs':>5}  {'seconds':>7}")
    for r in rows:
        print(f"{r['seed']:>5}  {'on' if r['transfers_on'] else 'off':<9}  {r['annecs']:>6}  {r['transfers']:>10}  {r['envs']:>5}  {r['seconds']:>7.1f}")
    for on in (True, False):
        a = [r["annecs"] for r in rows if r["transfers_on"] == on]
        print(f"mean ANNECS with transfers {'on ' if on else 'off'}: {np.mean(a):.2f} (min {min(a)}, max {max(a)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--env", default="Pendulum-v1", choices=["Pendulum-v1", "LunarLanderContinuous-v3"])
    ap.add_argument("--ray", action="store_true", help="also time the Ray backend")
    ap.add_argument("--repeat", type=int, default=3, help="alternating repeats (medians are reported)")
    ap.add_argument("--ablation", choices=["pendulum", "point"], help="transfer ablation instead of timings")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--ablation-iterations", type=int, default=100)
    a = ap.parse_args()
    if a.ablation:
        ablation(a.ablation, a.seeds, a.ablation_iterations, a.workers)
        return
    s, agent, pairs = build(a.pairs, a.population, a.env)
    configs = [(1, "local"), (a.workers, "local")] + ([(a.workers, "ray")] if a.ray else [])
    # Alternate the configurations `repeat` times and report medians: this machine is shared and noisy.
    runs: dict[tuple[int, str], list] = {c: [] for c in configs}
    for _ in range(a.repeat):
        for workers, backend in configs:
            runs[(workers, backend)].append(timed(s, agent, pairs, a.iterations, workers, backend))
    rows = []
    for (workers, backend), rs in runs.items():
        ips = float(np.median([r[0] for r in rs]))
        rows.append((workers, backend, ips, float(np.median([r[1] for r in rs])), rs[0][2], [r[0] for r in rs]))
    base = rows[0][2]
    print(f"{a.env}: {a.pairs} pairs, population {a.population}, {a.iterations} timed iterations, "
          f"medians of {a.repeat} alternating runs")
    print(f"{'workers':>7}  {'backend':<7}  {'it/s':>7}  {'seconds':>8}  {'speed-up':>8}  same result  all it/s")
    for workers, backend, ips, dt, scores, all_ips in rows:
        same = scores == rows[0][4]
        spread = " ".join(f"{x:.2f}" for x in all_ips)
        print(f"{workers:>7}  {backend:<7}  {ips:>7.3f}  {dt:>8.2f}  {ips / base:>7.2f}x  {str(same):<11}  {spread}")

if __name__ == "__main__":
    main()
