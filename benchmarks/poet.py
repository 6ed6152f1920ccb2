"""POET iterations per second: 1 vs N local workers, and local processes vs Ray.

    python benchmarks/poet.py                      # Pendulum setting of examples/poet.exp, 5 active pairs
    python benchmarks/poet.py --iterations 20 --workers 2 --ray

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

    def inl(op, **kw):
        return op.fn(op.params(**kw))

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
    s = settings_from(p, seed=0)
    agent = agent_json(s)
    return s, agent, pairs


def timed(s, agent, pairs: int, iterations: int, workers: int, backend: str) -> tuple[float, float, list]:
    from expc.runtime.poet.loop import EnvRecord, Poet
    from expc.runtime.poet.workers import Executor

    ex = Executor(workers, backend)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--env", default="Pendulum-v1", choices=["Pendulum-v1", "LunarLanderContinuous-v3"])
    ap.add_argument("--ray", action="store_true", help="also time the Ray backend")
    a = ap.parse_args()
    s, agent, pairs = build(a.pairs, a.population, a.env)
    rows = []
    configs = [(1, "local"), (a.workers, "local")] + ([(a.workers, "ray")] if a.ray else [])
    for workers, backend in configs:
        ips, dt, scores = timed(s, agent, pairs, a.iterations, workers, backend)
        rows.append((workers, backend, ips, dt, scores))
    base = rows[0][2]
    print(f"{a.env}: {a.pairs} pairs, population {a.population}, {a.iterations} timed iterations")
    print(f"{'workers':>7}  {'backend':<7}  {'it/s':>7}  {'seconds':>8}  {'speed-up':>8}  same result")
    for workers, backend, ips, dt, scores in rows:
        same = scores == rows[0][4]
        print(f"{workers:>7}  {backend:<7}  {ips:>7.3f}  {dt:>8.2f}  {ips / base:>7.2f}x  {same}")


if __name__ == "__main__":
    main()
