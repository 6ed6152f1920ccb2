"""One `map` over rollout tasks: in this process, in local worker processes, or as Ray tasks.

Every rollout's result depends only on its task (policy parameters, noise seed, episode seed,
environment config), and results come back in task order, so a run gives the same numbers with any
number of workers and on either backend. Groups of rollouts are split into a few chunks per worker
so that the workers share an iteration evenly.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
from contextlib import contextmanager

from expc.runtime.poet.rollout import run_task


# Rollouts do tiny matrix products: BLAS thread pools in every worker only oversubscribe the cores
# (measured on 2 cores: 1.5x with 2 workers and default BLAS threads, 2.2x with one thread each).
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextmanager
def _environ(values: dict[str, str]):
    """Set environment variables while worker processes start (they inherit them), then restore."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class RolloutPool:
    def __init__(self, workers: int = 1, backend: str = "local", address: str | None = None):
        self.workers = max(1, int(workers))
        self.backend = backend
        self._pool = None
        self._remote = None
        self._started_ray = False
        if backend == "ray":
            import ray

            if not ray.is_initialized():
                self._started_ray = True
                if address:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False)
                else:
                    ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
            self._remote = ray.remote(num_cpus=1, runtime_env={"env_vars": ONE_THREAD})(run_task)
        elif self.workers > 1:
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
            with _environ(ONE_THREAD):
                self._pool = mp.get_context(method).Pool(self.workers)

    def map(self, tasks: list[dict]) -> list[list[list[float]]]:
        if not tasks:
            return []
        if self._remote is not None:
            import ray

            return ray.get([self._remote.remote(t) for t in tasks])
        if self._pool is not None:
            return self._pool.map(run_task, tasks, chunksize=1)
        return [run_task(t) for t in tasks]

    def run(self, groups: list[dict]) -> list[list[list[float]]]:
        """Run groups (tasks sharing env and theta), split into chunks for the workers; one result
        list per group, in item order."""
        parallel = self.workers if (self._pool is not None or self._remote is not None) else 1
        tasks, owners = [], []
        for gi, g in enumerate(groups):
            items = g["items"]
            # Each group (one pair's ES step or evaluation) is cut into 2 chunks per worker: with a few
            # groups of equal size, whole groups would leave a worker idle (5 groups on 2 workers: 3:2).
            chunk = max(1, math.ceil(len(items) / (2 * parallel))) if parallel > 1 else max(1, len(items))
            for s in range(0, len(items), chunk):
                tasks.append({**g, "items": items[s : s + chunk]})
                owners.append(gi)
        results: list[list] = [[] for _ in groups]
        for gi, res in zip(owners, self.map(tasks)):
            results[gi].extend(res)
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        self.close()
