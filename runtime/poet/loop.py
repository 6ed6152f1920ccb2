"""The POET loop: a growing population of environment-agent pairs.

One iteration `it` (as in the published `optimize`):
1. every `mutate.n` iterations (it > 0), reproduction: pairs scoring >= repro_threshold are parents;
   `children` mutations of random parents, deduplicated against every environment seen; a child
   passes the minimal criterion when its parent's agent scores within `criterion` on it; passing
   children are ranked by novelty; in that order each gets the best agent of a targeted transfer
   (every active agent, directly and after one ES step on the child) and is admitted when that score
   also passes the minimal criterion, until `admit` children are in. Beyond `max_active` pairs the
   oldest are archived.
2. one ES step for every active pair, then `eval_episodes` evaluation episodes of the new agent.
3. every `transfer.n` iterations, transfers between active pairs. "original": a target takes the
   best of the other agents, directly or fine-tuned by one ES step on it, if it beats its current
   score. "enhanced": the threshold is the max of the target's last 5 scores, and only agents whose
   direct transfer passes it are fine-tuned (and must pass it again after fine-tuning).

All random draws come from `derive_rng(seed, purpose, it, ...)`, so the run is a pure function of its
settings: resuming from a checkpoint taken between iterations continues exactly, and rollouts give
the same returns on any number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from expc.runtime.poet import es as ES
from expc.runtime.poet.novelty import knn_novelty, pata_ec_vector
from expc.runtime.poet.policy import init_theta
from expc.runtime.poet.spec import PoetSettings, derive_rng, draw_seeds
from expc.runtime.poet.workers import RolloutPool

# Purposes: the first key of every derived generator.
INIT, STEP, EVAL, REPRO, MC, TRANSFER, FINE_TUNE, PATA, PATA_CHILD, TARGETED = range(1, 11)


@dataclass
class Pair:
    id: int
    params: dict
    created_at: int
    parent: int | None
    theta: np.ndarray
    opt: ES.Adam
    sigma: float
    lr: float
    score: float | None = None
    recent: list[float] = field(default_factory=list)


@dataclass
class EnvRecord:
    id: int
    params: dict
    created_at: int
    parent: int | None
    archived_at: int | None = None
    best: float | None = None
    solved_at: int | None = None


@dataclass
class State:
    iteration: int  # the next iteration to run
    next_id: int
    pairs: list[Pair]
    envs: dict[int, EnvRecord]  # every environment ever admitted, active ones included
    archived_thetas: dict[int, np.ndarray]
    history: list[dict] = field(default_factory=list)
    transfers: int = 0
    pata_cache: dict[str, float] = field(default_factory=dict)

    def annecs(self) -> int:
        return sum(1 for e in self.envs.values() if e.parent is not None and e.solved_at is not None)


class Poet:
    def __init__(self, s: PoetSettings, agent: dict, executor: RolloutPool):
        self.s = s
        self.agent = agent  # JSON: layer sizes, activation, action space
        self.ex = executor
        self.steps = 0  # environment steps, for logs

    # ---- state -------------------------------------------------------------------------------

    def new_state(self) -> State:
        params = self.s.env.initial()
        theta = init_theta(self.agent, derive_rng(self.s.seed, INIT))
        root = self._pair(0, params, 0, None, theta)
        return State(0, 1, [root], {0: EnvRecord(0, params, 0, None)}, {})

    def _pair(self, pid: int, params: dict, it: int, parent: int | None, theta: np.ndarray) -> Pair:
        return Pair(pid, params, it, parent, theta, ES.Adam.fresh(theta.size), self.s.es.sigma, self.s.es.lr)

    # ---- rollouts ----------------------------------------------------------------------------

    def _group(self, params: dict, theta: np.ndarray, items: list, sigma: float = 0.0) -> dict:
        return {"env": self.s.env.config(params), "agent": self.agent, "theta": theta.tolist(), "sigma": sigma, "items": items}

    def _run(self, groups: list[dict]) -> list[list[list[float]]]:
        res = self.ex.run(groups)
        self.steps += int(sum(r[1] for g in res for r in g))
        return res

    def _evaluate(self, jobs: list[tuple[dict, np.ndarray, list[int]]]) -> list[float]:
        """Mean returns of (env params, theta, episode seeds) jobs, in one parallel round."""
        res = self._run([self._group(p, th, [[0, 0, s] for s in seeds]) for p, th, seeds in jobs])
        return [float(np.mean([r[0] for r in g])) for g in res]

    def _es_steps(self, jobs: list[tuple[dict, np.ndarray, ES.Adam, float, float, np.random.Generator]]) -> list[np.ndarray]:
        """One ES step for each (env params, theta, optimizer, sigma, lr, rng); optimizers are updated."""
        plans = [ES.plan_items(self.s.es, rng) for *_, rng in jobs]
        res = self._run([self._group(p, th, items, sig) for (p, th, _, sig, _, _), items in zip(jobs, plans)])
        out = []
        for (p, th, opt, sig, lr, _), items, r in zip(jobs, plans, res):
            g = ES.gradient(self.s.es, items, r, sig, th.size)
            out.append(ES.apply(self.s.es, th, opt, g, lr))
        return out

    def _eval_seeds(self, *keys: int) -> list[int]:
        return draw_seeds(derive_rng(self.s.seed, *keys), self.s.es.eval_episodes)

    def pass_mc(self, score: float) -> bool:
        lo, hi = self.s.criterion
        return lo <= score <= hi

    # ---- one iteration -----------------------------------------------------------------------

    def iterate(self, st: State) -> dict:
        it = st.iteration
        self.steps = 0
        record: dict = {"iteration": it, "admitted": [], "archived": [], "transfers": [], "children": 0, "passed_mc": 0}
        if it > 0 and it % self.s.mutate.n == 0:
            self.reproduce(st, it, record)
        self.es_step(st, it)
        if len(st.pairs) > 1 and it % self.s.transfer.n == 0:
            record["transfers"] = self.transfer(st, it)
            st.transfers += len(record["transfers"])
        for p in st.pairs:
            env = st.envs[p.id]
            env.best = p.score if env.best is None else max(env.best, p.score)
            if env.solved_at is None and p.score >= self.s.solved:
                env.solved_at = it
        record["scores"] = {str(p.id): p.score for p in st.pairs}
        record["annecs"] = st.annecs()
        record["steps"] = self.steps
        st.history.append(record)
        st.iteration = it + 1
        return record

    def es_step(self, st: State, it: int) -> None:
        jobs = [(p.params, p.theta, p.opt, p.sigma, p.lr, derive_rng(self.s.seed, STEP, it, p.id)) for p in st.pairs]
        for p, theta in zip(st.pairs, self._es_steps(jobs)):
            p.theta = theta
            p.sigma, p.lr = ES.decay(self.s.es, p.sigma, p.lr)
        scores = self._evaluate([(p.params, p.theta, self._eval_seeds(EVAL, it, p.id)) for p in st.pairs])
        for p, score in zip(st.pairs, scores):
            p.score = score
            p.recent = (p.recent + [score])[-5:]

    # ---- transfer ----------------------------------------------------------------------------

    def transfer(self, st: State, it: int) -> list[dict]:
        enhanced = self.s.variant == "enhanced"
        pairs = st.pairs
        seeds = {t.id: self._eval_seeds(TRANSFER, it, t.id) for t in pairs}
        edges = [(t, s) for t in pairs for s in pairs if s is not t]
        direct = self._evaluate([(t.params, s.theta, seeds[t.id]) for t, s in edges])
        threshold = {t.id: (max(t.recent) if enhanced else t.score) for t in pairs}
        candidates: dict[int, list[tuple[float, int, str, np.ndarray]]] = {t.id: [] for t in pairs}
        tune = []
        for (t, s), score in zip(edges, direct):
            passed = score > threshold[t.id]
            if passed:
                candidates[t.id].append((score, s.id, "direct", s.theta))
            if self.s.transfer.fine_tune and (passed or not enhanced):
                tune.append((t, s))
        if tune:
            proposals = self._es_steps([
                (t.params, s.theta, t.opt.copy(), t.sigma, t.lr, derive_rng(self.s.seed, FINE_TUNE, it, t.id, s.id))
                for t, s in tune
            ])
            tuned = self._evaluate([(t.params, th, seeds[t.id]) for (t, _), th in zip(tune, proposals)])
            for (t, s), th, score in zip(tune, proposals, tuned):
                if score > threshold[t.id]:
                    candidates[t.id].append((score, s.id, "fine_tuned", th))
        done = []
        for t in pairs:
            if not candidates[t.id]:
                continue
            score, source, kind, theta = max(candidates[t.id], key=lambda c: c[0])
            t.theta = np.array(theta)
            t.opt = ES.Adam.fresh(theta.size)
            t.score = score
            t.recent = (t.recent + [score])[-5:]
            done.append({"target": t.id, "source": source, "kind": kind, "score": score})
        return done

    # ---- reproduction ------------------------------------------------------------------------

    def reproduce(self, st: State, it: int, record: dict) -> None:
        m = self.s.mutate
        parents = [p for p in st.pairs if p.score is not None and p.score >= self.s.repro_threshold]
        if not parents:
            return
        rng = derive_rng(self.s.seed, REPRO, it)
        seen_envs = st.envs.values() if self.s.archive else [st.envs[p.id] for p in st.pairs]
        seen = {self.s.env.key(e.params) for e in seen_envs}
        children: list[tuple[dict, Pair]] = []
        for _ in range(m.children):
            parent = parents[int(rng.integers(len(parents)))]
            params = self.s.env.mutate(parent.params, rng)
            key = self.s.env.key(params)
            if key not in seen:
                seen.add(key)
                children.append((params, parent))
        record["children"] = len(children)
        scores = self._evaluate([(c, p.theta, self._eval_seeds(MC, it, i)) for i, (c, p) in enumerate(children)])
        passing = [(i, c, p) for i, ((c, p), sc) in enumerate(zip(children, scores)) if self.pass_mc(sc)]
        record["passed_mc"] = len(passing)
        if not passing:
            return
        novelty = self.novelty(st, it, [(i, c) for i, c, _ in passing])
        order = sorted(range(len(passing)), key=lambda j: -novelty[j])
        admitted = 0
        for j in order:
            i, params, parent = passing[j]
            score, theta = self.targeted_transfer(st, it, i, params)
            if not self.pass_mc(score):
                continue
            pid = st.next_id
            st.next_id += 1
            pair = self._pair(pid, params, it, parent.id, theta)
            pair.score, pair.recent = score, [score]
            st.pairs.append(pair)
            st.envs[pid] = EnvRecord(pid, params, it, parent.id)
            record["admitted"].append({"id": pid, "parent": parent.id, "params": params, "score": score, "novelty": novelty[j]})
            admitted += 1
            if admitted >= m.admit:
                break
        while len(st.pairs) > m.max_active:
            old = st.pairs.pop(0)
            st.envs[old.id].archived_at = it
            if self.s.archive:
                st.archived_thetas[old.id] = old.theta
            record["archived"].append(old.id)

    def targeted_transfer(self, st: State, it: int, child: int, params: dict) -> tuple[float, np.ndarray]:
        """The best active agent on a new environment, directly or after one ES step on it."""
        seeds = self._eval_seeds(TARGETED, it, child)
        thetas = [p.theta for p in st.pairs]
        direct = self._evaluate([(params, th, seeds) for th in thetas])
        proposals = self._es_steps([
            (params, th, ES.Adam.fresh(th.size), self.s.es.sigma, self.s.es.lr, derive_rng(self.s.seed, TARGETED, it, child, p.id))
            for p, th in zip(st.pairs, thetas)
        ])
        tuned = self._evaluate([(params, th, seeds) for th in proposals])
        best = max(zip(direct + tuned, thetas + proposals), key=lambda c: c[0])
        return best[0], np.array(best[1])

    # ---- novelty -----------------------------------------------------------------------------

    def novelty(self, st: State, it: int, children: list[tuple[int, dict]]) -> list[float]:
        nv = self.s.novelty
        envs = [st.envs[p.id] for p in st.pairs]
        if self.s.archive:
            envs = [e for e in st.envs.values() if e.archived_at is not None] + envs
        if nv.kind == "params":
            scale = self.s.env.scales() if nv.normalize else None
            vec = lambda params: self.s.env.vector(params) / scale if scale is not None else self.s.env.vector(params)
            others = [vec(e.params) for e in envs]
            return [knn_novelty(vec(c), others, nv.k) for _, c in children]
        # PATA-EC over a capped agent set and a capped set of environments (most recent kept).
        envs = envs[-max(nv.max_envs, len(st.pairs)) :]
        archived = [i for i in st.archived_thetas][-max(0, nv.max_agents - len(st.pairs)) :] if nv.max_agents > len(st.pairs) else []
        agents = [("a", p.id, p.theta) for p in st.pairs] + [("z", i, st.archived_thetas[i]) for i in archived]
        rows: dict[str, list[float | None]] = {}
        jobs, where = [], []
        targets = [(f"e{e.id}", e.params, [int(derive_rng(self.s.seed, PATA, e.id).integers(2**31 - 1))]) for e in envs]
        targets += [(f"c{i}", c, [int(derive_rng(self.s.seed, PATA_CHILD, it, i).integers(2**31 - 1))]) for i, c in children]
        for name, params, seed in targets:
            rows[name] = [None] * len(agents)
            for a, (kind, aid, theta) in enumerate(agents):
                cache_key = f"{aid}:{name}"
                if kind == "z" and name.startswith("e") and cache_key in st.pata_cache:
                    rows[name][a] = st.pata_cache[cache_key]
                else:
                    jobs.append((params, theta, seed))
                    where.append((name, a, cache_key if kind == "z" and name.startswith("e") else None))
        for (name, a, cache_key), score in zip(where, self._evaluate(jobs)):
            rows[name][a] = score
            if cache_key is not None:
                st.pata_cache[cache_key] = score
        vectors = {name: pata_ec_vector(r, nv.clip) for name, r in rows.items()}
        others = [vectors[f"e{e.id}"] for e in envs]
        return [knn_novelty(vectors[f"c{i}"], others, nv.k) for i, _ in children]


def run(poet: Poet, st: State, on_iteration: Callable[[State, dict], None]) -> State:
    while st.iteration < poet.s.iterations:
        record = poet.iterate(st)
        on_iteration(st, record)
    return st
