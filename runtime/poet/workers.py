"""One `map` over rollout tasks: in this process, in local worker processes, or as Ray tasks.

Every rollout's result depends only on its task (policy parameters, noise seed, episode seed,
environment config), and results come back in task order, so a run gives the same numbers with any
number of workers and on either backend. Groups of rollouts are split into a few chunks per worker
so that two workers share an iteration evenly.
"""

from __future__ import annotations

import math
import multiprocessing as mp

from expc.runtime.poet.rollout import run_task


class Executor:
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
            self._remote = ray.remote(num_cpus=1)(run_task)
        elif self.workers > 1:
            method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
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
        total = sum(len(g["items"]) for g in groups)
        parallel = self.workers if (self._pool is not None or self._remote is not None) else 1
        chunk = max(1, math.ceil(total / (4 * parallel))) if parallel > 1 else max(1, total)
        tasks, owners = [], []
        for gi, g in enumerate(groups):
            items = g["items"]
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
