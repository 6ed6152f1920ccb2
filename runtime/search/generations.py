"""The loop of a strategy search (`search NAME { strategy = evolution(...), generations = N }`): ask the
strategy for a generation, evaluate its candidates with ctx.map (the same evaluation as parallel
trials: worker processes or Ray tasks), tell it the results, repeat.

Storage and resume: the study is the same Optuna RDB study (SQLite, in the node's work dir) as a
sampler's. Each evaluated candidate is a trial with user attributes generation, index (its place in
the generation) and bindings (JSON); its value is the objective. A strategy is deterministic given its
seed and what it was told, so a restarted search replays: it asks again, finds each (generation,
index) already stored with the same bindings, tells the stored results, and evaluates only what is
missing. A kill -9 therefore costs at most the candidates that were being evaluated.

A candidate whose bindings an earlier trial already evaluated (an unchanged child, a duplicate) is
not evaluated again: its trial copies that result (user attribute `copy_of`).

keep = "best": after each generation the store forgets what the candidates that are not the best so
far computed for themselves (their trained networks; ctx.discard): their objectives, measures and
genomes stay in the study and the result, their logged metrics in the run registry.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from optuna.trial import TrialState

from expc.runtime.api import OpError
from expc.runtime.search.driver import (_BINDINGS, _COUNTED, _MEASURES, _copy_study, _open_study, _pruning_hook,
                                        _trial_row, describe_genomes, evaluate, searched_params, trial_bindings)
from expc.runtime.search.genes import Genes
from expc.runtime.search.strategy import Told
from expc.runtime.search.trial import measures_of, targets_of

_GENERATION = "generation"
_INDEX = "index"
_BEHAVIOUR = "behaviour"
_COPY = "copy_of"
DEFAULT_GENERATIONS = 10


def canonical(b: dict[str, Any]) -> str:
    return json.dumps(b, sort_keys=True, separators=(",", ":"))


def run_strategy(p, ctx) -> dict:
    started = time.time()
    targets = targets_of(p.objective)
    measures = measures_of(p.measure)
    (target,) = targets  # the params model allows one objective with a strategy
    names = searched_params(p, ctx, targets)
    space = {n: ctx.distribution(n) for n in names}
    behaviour = p.strategy.behaviour()
    if behaviour is not None and behaviour not in {m.name for m in measures}:
        raise OpError(f"the novelty behaviour '{behaviour}' is not one of the search's measures", field="strategy",
                      hint=f"add it: measure = {{{behaviour}: EVAL}}, EVAL giving a number or a list of numbers")
    generations = int(p.generations or DEFAULT_GENERATIONS)
    remote = p.parallel > 1 or ctx.backend == "ray"
    if p.pruner is not None and remote:
        ctx.warn("candidates in worker processes or Ray tasks are not pruned (only with parallel = 1)", field="pruner")
    metric = p.pruner.metric if p.pruner is not None and not remote else None
    import optuna

    pruner = p.pruner.make() if p.pruner is not None else optuna.pruners.NopPruner()
    study = _open_study(ctx, [target.direction], pruner)
    sign = 1.0 if target.direction == "maximize" else -1.0
    loop = _Loop(p, ctx, study, targets, measures, names, sign, behaviour, metric)
    strategy = p.strategy.start(space)
    genes = Genes(space)
    history: list[dict[str, Any]] = []
    advance = ctx.progress(generations, "search", unit="generation")
    for g in range(generations):
        ctx.check_cancelled()
        candidates = strategy.ask()
        for b in candidates:
            why = genes.contains(b)
            if why is not None:  # a strategy's bug, not the user's: say which
                raise OpError(f"the strategy proposed an invalid candidate in generation {g}: {why}", field="strategy")
        told = loop.generation(g, candidates)
        strategy.tell(told)
        members = strategy.members() or [(b, t.fitness) for b, t in zip(candidates, told)]
        history.append(_stats(g, members, told, genes, sign, strategy.generation_stats()))
        loop.forget()
        advance(1)
    return _result(study, ctx, target, measures, names, space, history, time.time() - started)


class _Loop:
    """Evaluation and storage of one generation after another."""

    def __init__(self, p, ctx, study, targets, measures, names, sign, behaviour, metric):
        self.p, self.ctx, self.study = p, ctx, study
        self.targets, self.measures, self.names = targets, measures, names
        self.sign, self.behaviour, self.metric = sign, behaviour, metric
        self.remote = p.parallel > 1 or ctx.backend == "ray"
        self.warm = False  # has a candidate been evaluated in this process yet
        self.stored: dict[tuple[int, int], Any] = {}
        # canonical bindings -> (number, value, user attrs) of the trial that evaluated them
        self.known: dict[str, tuple[int, float, dict]] = {}
        for t in study.get_trials(deepcopy=False):
            if t.user_attrs.get(_COUNTED) and _GENERATION in t.user_attrs:
                self.stored[(t.user_attrs[_GENERATION], t.user_attrs[_INDEX])] = t
                if t.state == TrialState.COMPLETE and not t.user_attrs.get(_COPY):
                    self.known.setdefault(canonical(trial_bindings(t)), (t.number, t.value, dict(t.user_attrs)))
        self.fresh: list[dict[str, Any]] = []  # bindings evaluated since the last forget()
        self.kept: str | None = None  # canonical bindings of the best so far, whose results stay

    def generation(self, g: int, candidates: list[dict[str, Any]]) -> list[Told]:
        told: list[Told | None] = [None] * len(candidates)
        todo = []
        for i, b in enumerate(candidates):
            t = self.stored.get((g, i))
            if t is None:
                todo.append(i)
                continue
            if canonical(trial_bindings(t)) != canonical(b):
                raise OpError(f"the stored study does not match this search (generation {g}, candidate {i} differs)",
                              field="strategy", hint="the study in the node's work dir is from another version of "
                              "the strategy: remove that directory to start over")
            told[i] = self._told(t)
        pending = {}
        for i in todo:
            trial = self.study.ask()
            trial.set_user_attr(_GENERATION, g)
            trial.set_user_attr(_INDEX, i)
            trial.set_user_attr(_BINDINGS, canonical(candidates[i]))
            pending[i] = trial
        try:
            run, twins = [], []  # twins: equal to a candidate evaluated in this batch
            batch: dict[str, int] = {}  # canonical bindings -> the number of the trial evaluating them
            for i, trial in list(pending.items()):
                k = canonical(candidates[i])
                source = self.known.get(k)
                if source is not None:
                    told[i] = self._copy(trial, *source)
                    del pending[i]
                elif k in batch:
                    twins.append((i, trial))
                else:
                    batch[k] = trial.number
                    run.append((i, trial))
            if run:
                hooks = [_pruning_hook(t, self.metric, t.number) for _, t in run] if self.metric else None
                bindings = [candidates[i] for i, _ in run]
                raw = {self.behaviour} if self.behaviour else set()
                outcomes = []
                if self.remote and not self.warm:
                    # one candidate here first: it computes the shared upstream work (the data) once,
                    # before several workers would each start on it
                    outcomes = evaluate(self.ctx, self.targets, self.measures, bindings[:1], 1, True,
                                        hooks[:1] if hooks else None, raw)
                self.warm = True
                outcomes += evaluate(self.ctx, self.targets, self.measures, bindings[len(outcomes):], self.p.parallel,
                                     False, hooks[len(outcomes):] if hooks else None, raw)
                failure, finished = None, False
                for (i, trial), outcome in zip(run, outcomes):
                    told[i], failed = self._tell(trial, candidates[i], outcome)
                    del pending[i]
                    failure = failure or failed
                    finished = finished or told[i].fitness is not None
                for i, trial in twins:
                    source = self.known.get(canonical(candidates[i]))
                    if source is not None:
                        told[i] = self._copy(trial, *source)
                    else:  # its twin failed or was pruned: so does it (and stays so on resume)
                        trial.set_user_attr(_COPY, batch[canonical(candidates[i])])
                        trial.set_user_attr(_COUNTED, True)
                        self.study.tell(trial, state=TrialState.FAIL)
                        told[i] = Told(None)
                    del pending[i]
                if failure is not None and not finished:
                    # Every candidate evaluated here failed: most likely the program, not the genomes
                    # (a missing file, a bad field); stop with the node's own diagnostic.
                    failure.get()
        finally:
            for t in pending.values():  # interrupted: candidates in flight are evaluated again on resume
                self.study.tell(t, state=TrialState.FAIL)
        return told

    def _told(self, t) -> Told:
        measures = t.user_attrs.get(_MEASURES) or {}
        fitness = self.sign * t.value if t.state == TrialState.COMPLETE else None
        return Told(fitness, {k: v for k, v in measures.items() if isinstance(v, (int, float))},
                    t.user_attrs.get(_BEHAVIOUR))

    def _copy(self, trial, number: int, value: float, attrs: dict) -> Told:
        for k in (_MEASURES, _BEHAVIOUR):
            if k in attrs:
                trial.set_user_attr(k, attrs[k])
        trial.set_user_attr(_COPY, number)
        trial.set_user_attr(_COUNTED, True)
        trial.set_user_attr("seconds", 0.0)
        self.study.tell(trial, value)
        measures = attrs.get(_MEASURES) or {}
        return Told(self.sign * value, {k: v for k, v in measures.items() if isinstance(v, (int, float))},
                    attrs.get(_BEHAVIOUR))

    def _tell(self, trial, bindings, outcome) -> tuple[Told | None, Any]:
        failed, values, measured, seconds = outcome
        number = trial.number
        if failed is not None and not failed.pruned:
            # An evolved architecture may diverge (a NaN loss): the candidate counts, with no fitness,
            # and the search goes on; the generation fails the search only if none of it finished.
            why = _first_line(failed.error)
            trial.set_user_attr(_COUNTED, True)
            trial.set_user_attr("seconds", seconds)
            trial.set_user_attr("error", why)
            self.study.tell(trial, state=TrialState.FAIL)
            self.ctx.warn(f"trial {number} failed and counts with no fitness: {why}")
            return Told(None), failed
        trial.set_user_attr(_COUNTED, True)
        trial.set_user_attr("seconds", seconds)
        self.fresh.append(bindings)
        if failed is not None:  # pruned
            self.study.tell(trial, state=TrialState.PRUNED)
            self.ctx.log("pruned", 1.0, step=number)
            return Told(None), None
        vector = measured.pop(self.behaviour, None) if self.behaviour else None
        if vector is not None:
            trial.set_user_attr(_BEHAVIOUR, vector)
            if len(vector) == 1:
                measured[self.behaviour] = vector[0]
        if measured:
            trial.set_user_attr(_MEASURES, measured)
        value = values[0]
        if math.isfinite(value):
            self.study.tell(trial, value)
            attrs = {_MEASURES: measured, **({_BEHAVIOUR: vector} if vector is not None else {})}
            self.known.setdefault(canonical(bindings), (number, value, attrs))
        else:
            self.ctx.warn(f"trial {number}: the objective is not finite ({value}); the candidate counts as failed")
            self.study.tell(trial, state=TrialState.FAIL)
        self.ctx.log("objective", value, step=number)
        for name, v in measured.items():
            self.ctx.log(f"measure.{name}", v, step=number)
        return Told(self.sign * value if math.isfinite(value) else None,
                    {k: v for k, v in measured.items() if isinstance(v, (int, float))}, vector), None

    def forget(self) -> None:
        """keep = "best": drop the stored results of the candidates evaluated since the last call, and
        of the previous best if a better one came, except the best so far's."""
        if self.p.keep != "best":
            return
        best = _best_trial(self.study, self.sign)
        best_key = canonical(trial_bindings(best)) if best is not None else None
        drop = list(self.fresh)
        if self.kept is not None and self.kept != best_key:
            drop.append(json.loads(self.kept))
        self.kept = best_key
        self.fresh = []
        seen = set()
        for b in drop:
            k = canonical(b)
            if k == best_key or k in seen:
                continue
            seen.add(k)
            for node in {t.node for t in self.targets} | {m.node for m in self.measures}:
                self.ctx.discard(node, b)


def _best_trial(study, sign: float):
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    return max(complete, key=lambda t: (sign * t.value, -t.number))


def _stats(g: int, members: list[tuple[dict, float | None]], told: list[Told], genes: Genes, sign: float,
           extra: dict[str, Any]) -> dict[str, Any]:
    """A generation's facts, objectives in the search's own direction: the best and mean over the
    population, the mean pairwise distance of its candidates (Genes.distance), and the strategy's own."""
    fits = [f for _, f in members if f is not None]
    pop = [b for b, _ in members]
    pairs = [(i, j) for i in range(len(pop)) for j in range(i + 1, len(pop))]
    out = {
        "generation": g,
        "candidates": len(told),
        "failed": sum(1 for t in told if t.fitness is None),
        "best": sign * max(fits) if fits else None,
        "mean": sign * sum(fits) / len(fits) if fits else None,
        "diversity": sum(genes.distance(pop[i], pop[j]) for i, j in pairs) / len(pairs) if pairs else 0.0,
        "size": len(pop),
    }
    out.update({k: v for k, v in extra.items() if k not in out})
    return out


def _result(study, ctx, target, measures, names, space, history, seconds) -> dict:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if not t.user_attrs.get(_COUNTED) or _GENERATION not in t.user_attrs:
            continue
        row = _trial_row(t, False, False, measures)
        row["generation"] = t.user_attrs[_GENERATION]
        if _BEHAVIOUR in t.user_attrs:
            row["behaviour"] = t.user_attrs[_BEHAVIOUR]
        if _COPY in t.user_attrs:
            row["copy_of"] = t.user_attrs[_COPY]
        rows.append(row)
    best = _best_trial(study, 1.0 if target.direction == "maximize" else -1.0)
    if best is None:
        raise OpError("no candidate finished with a finite objective", field="objective")
    out: dict[str, Any] = {
        "directions": [target.direction],
        "objectives": [target.label],
        "measures": [m.name for m in measures],
        "params": names,
        "log": [n for n, d in space.items() if getattr(d.optuna(), "log", False)],
        "trials": rows,
        "seconds": seconds,
        "study": "study.sqlite",
        "best": trial_bindings(best),
        "best_value": best.value,
        "best_trial": best.number,
        "pareto": [],
        "generations": history,
        "described": describe_genomes(trial_bindings(best), ctx),
    }
    _copy_study(ctx)
    return out


def _first_line(error: BaseException | None) -> str:
    text = str(error) if error is not None else ""  # a failed node's exception reads as its diagnostic
    return text.splitlines()[0] if text else "failed"
