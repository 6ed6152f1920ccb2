"""Where trials run: in the search's own process, in local worker processes, or as Ray tasks.

Every backend has the same three calls: `submit(number, bindings)`, `wait()` -> (number, result) for
the first trial to finish, and `close()`. The search's process owns the Optuna study (ask / tell);
workers only evaluate, against the shared store.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from typing import Any, Callable

from expc.runtime.search.trial import Target, evaluate_in_process, run_trial


class InProcess:
    """Trials in the search's own process. `hook(number)` gives the metric hook of a trial (the pruner
    reports the metrics its nodes log, and may stop it); only this backend can prune."""

    def __init__(self, evaluate: Callable[..., Any], targets: list[Target],
                 hook: Callable[[int], Callable | None] | None = None):
        self.evaluate = evaluate
        self.targets = targets
        self.hook = hook
        self.done: list[tuple[int, dict]] = []

    def submit(self, number: int, bindings: dict) -> None:
        on_metric = self.hook(number) if self.hook else None
        self.done.append((number, evaluate_in_process(self.evaluate, self.targets, bindings, on_metric)))

    def wait(self) -> tuple[int, dict]:
        return self.done.pop(0)

    def close(self) -> None:
        self.done.clear()


def _wire(targets: list[Target]) -> list[list[Any]]:
    return [[t.node, list(t.path), t.direction] for t in targets]


class Processes:
    """N local worker processes ("spawn": a clean interpreter, no forked torch state)."""

    def __init__(self, spec: dict, targets: list[Target], workers: int):
        self.spec = spec
        self.targets = _wire(targets)
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        self.pending: dict[cf.Future, int] = {}

    def submit(self, number: int, bindings: dict) -> None:
        self.pending[self.pool.submit(run_trial, self.spec, self.targets, bindings)] = number

    def wait(self) -> tuple[int, dict]:
        done, _ = cf.wait(list(self.pending), return_when=cf.FIRST_COMPLETED)
        fut = next(iter(done))
        number = self.pending.pop(fut)
        return number, fut.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayTasks:
    """Trials as Ray tasks: on the cluster at `address`, or on a local Ray instance started here."""

    def __init__(self, spec: dict, targets: list[Target], address: str | None):
        import ray

        self.ray = ray
        self._started_here = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, ignore_reinit_error=True, logging_level="WARNING")
            else:
                ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, logging_level="WARNING")
                self._started_here = True
        self.task = ray.remote(num_cpus=1)(run_trial)
        self.spec = spec
        self.targets = _wire(targets)
        self.pending: dict[Any, int] = {}

    def submit(self, number: int, bindings: dict) -> None:
        self.pending[self.task.remote(self.spec, self.targets, bindings)] = number

    def wait(self) -> tuple[int, dict]:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1)
        ref = ready[0]
        number = self.pending.pop(ref)
        return number, self.ray.get(ref)

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()
        if self._started_here:
            self.ray.shutdown()
