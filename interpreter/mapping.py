"""`ctx.map`: evaluate one node under many param bindings, here, in local worker processes, or as Ray tasks.

Workers get a job: the checked program (the IR as JSON), the run's fixed params, the store and the
run id; never the source file, so an edit saved in watch mode while a search runs cannot give them a
different program than this process has. They write into the same store, so work finished here (the
fine-tunes upstream of a search's objective) is reused there. Only JSON crosses the boundary: values
come back encoded as the store encodes them, failures as diagnostics, raised here as if the node had
failed in this process.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from expc.interpreter.executor import NodeFailed
from expc.interpreter.store import decode, encode
from expc.runtime.api import Cancelled, MapResult, Pruned
from expc.spec.diagnostics import CompileError, Diagnostic

if TYPE_CHECKING:
    from expc.interpreter.executor import Executor
    from expc.interpreter.planner import PlanNode

IndexedMetricHook = Callable[[int, str, str, float, int | None], None]

_POLL_S = 0.5  # how often a wait for workers looks at the cancel flag


class Mapper:
    """ctx.map for one executor. Worker pools are started on first use and kept until close(), so a
    search's generations reuse warm workers (each pays the imports and the session once)."""

    def __init__(self, ex: Executor):
        self.ex = ex
        self._job: str | None = None
        self._pools: dict[tuple, Any] = {}

    def job(self) -> str:
        """What a worker needs to rebuild this executor, as one JSON string."""
        if self._job is None:
            self._job = json.dumps({
                "program": self.ex.program.model_dump(mode="json"),
                "bindings": self.ex.bindings,
                "store": str(self.ex.store.root),
                "run_id": self.ex.run_id,
            }, sort_keys=True)
        return self._job

    def map(self, target: str, bindings: list[dict[str, Any]], parallel: int | None = None,
            on_metric: IndexedMetricHook | None = None, in_process: bool = False,
            caller: PlanNode | None = None) -> list[MapResult]:
        settings = self.ex.program.settings
        parallel = max(1, int(settings.workers if parallel is None else parallel))
        if in_process or (parallel == 1 and settings.backend != "ray"):
            return [self._here(i, target, b, on_metric) for i, b in enumerate(bindings)]
        return self._remote(self._pool(parallel), target, bindings, parallel, caller)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    # -- in this process ---------------------------------------------------------------------------

    def _here(self, i: int, target: str, bindings: dict, on_metric: IndexedMetricHook | None) -> MapResult:
        hook = (lambda node, name, value, step: on_metric(i, node, name, value, step)) if on_metric else None
        previous = self.ex.metric_hook
        self.ex.metric_hook = hook
        started = time.time()
        try:
            value = self.ex.evaluate(target, bindings, bindings_note=bindings)
        except Pruned as e:
            return MapResult(error=e, pruned=True, seconds=time.time() - started)
        except NodeFailed as e:
            return MapResult(error=e, seconds=time.time() - started)
        finally:
            self.ex.metric_hook = previous
        return MapResult(value=value, seconds=time.time() - started)

    # -- in workers --------------------------------------------------------------------------------

    def _pool(self, parallel: int):
        s = self.ex.program.settings
        k = ("ray", s.address) if s.backend == "ray" else ("processes", parallel)
        pool = self._pools.get(k)
        if pool is None:
            pool = _RayTasks(s.address, parallel) if s.backend == "ray" else _Processes(parallel)
            self._pools[k] = pool
        return pool

    def _remote(self, pool, target: str, bindings: list[dict], parallel: int,
                caller: PlanNode | None) -> list[MapResult]:
        results: list[MapResult | None] = [None] * len(bindings)
        queue = list(range(len(bindings)))
        pending: dict[Any, int] = {}
        try:
            while queue or pending:
                while queue and len(pending) < parallel:
                    i = queue.pop(0)
                    try:
                        pending[pool.submit(self.job(), target, bindings[i])] = i
                    except Exception as e:  # a pool that broke earlier (a worker died) takes nothing more
                        results[i] = self._result({"ok": False, "crash": f"{type(e).__name__}: {e}"}, caller)
                for handle, outcome in pool.wait(list(pending), _POLL_S) if pending else ():
                    results[pending.pop(handle)] = self._result(outcome, caller)
                if self.ex.cancel.is_set():
                    raise Cancelled()
        finally:
            if pending:
                pool.cancel(list(pending))
            if pool.broken():  # the next map starts fresh workers
                self._pools = {k: v for k, v in self._pools.items() if v is not pool}
                pool.close()
        return results  # type: ignore[return-value]

    def _result(self, outcome: dict, caller: PlanNode | None) -> MapResult:
        seconds = float(outcome.get("seconds", 0.0))
        if outcome.get("ok"):
            return MapResult(value=decode(outcome["value"], self.ex.store.path(outcome["key"])), seconds=seconds)
        if "error" in outcome:
            return MapResult(error=NodeFailed(Diagnostic.from_json(outcome["error"])), seconds=seconds)
        # the worker itself broke (it died, or Ray lost it): shown at the calling node
        message = f"a worker process failed: {outcome.get('crash')}"
        if caller is not None:
            diag = self.ex._diag(caller, message, None, "run it again: nothing that finished is lost", "E699")
        else:
            diag = Diagnostic("E699", message, None)
        return MapResult(error=NodeFailed(diag), seconds=seconds)


class _Processes:
    """N local worker processes ("spawn": a clean interpreter, no forked torch state)."""

    def __init__(self, workers: int):
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, job: str, target: str, bindings: dict) -> cf.Future:
        return self.pool.submit(evaluate_job, job, target, bindings)

    def wait(self, handles: list[cf.Future], timeout: float) -> list[tuple[cf.Future, dict]]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        for fut in done:
            try:
                out.append((fut, fut.result()))
            except Exception as e:  # BrokenProcessPool: a worker died (killed, out of memory)
                out.append((fut, {"ok": False, "crash": f"{type(e).__name__}: {e}"}))
        return out

    def cancel(self, handles: list[cf.Future]) -> None:
        for fut in handles:
            fut.cancel()  # only queued ones; running ones finish into the store, unread

    def broken(self) -> bool:
        return bool(getattr(self.pool, "_broken", False))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _RayTasks:
    """Ray tasks: on the cluster at `address`, or on a local Ray instance started here (and shut
    down at close)."""

    def __init__(self, address: str | None, parallel: int):
        import ray

        self.ray = ray
        self._started_here = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, ignore_reinit_error=True, logging_level="WARNING")
            else:
                ray.init(num_cpus=max(2, parallel), include_dashboard=False, ignore_reinit_error=True,
                         logging_level="WARNING")
                self._started_here = True
        self.task = ray.remote(num_cpus=1)(evaluate_job)
        self._jobs: dict[str, Any] = {}  # job -> its object ref: the program is put in the object store once

    def submit(self, job: str, target: str, bindings: dict):
        ref = self._jobs.get(job)
        if ref is None:
            ref = self._jobs[job] = self.ray.put(job)
        return self.task.remote(ref, target, bindings)

    def wait(self, handles: list, timeout: float) -> list[tuple[Any, dict]]:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append((ref, self.ray.get(ref)))
            except Exception as e:  # the task or its worker died
                out.append((ref, {"ok": False, "crash": f"{type(e).__name__}: {e}"}))
        return out

    def cancel(self, handles: list) -> None:
        for ref in handles:
            self.ray.cancel(ref, force=True)

    def broken(self) -> bool:
        return False  # Ray restarts its workers itself

    def close(self) -> None:
        self._jobs.clear()
        if self._started_here:
            self.ray.shutdown()


# -- the worker side: plain JSON in, plain JSON out ------------------------------------------------

_sessions: dict[str, tuple[Any, int]] = {}  # job digest -> (session, run id): one per program and run


def _session(job: str) -> tuple[Any, int]:
    from expc.interpreter.session import Session
    from expc.spec.ir import Program

    digest = hashlib.sha256(job.encode()).hexdigest()
    found = _sessions.get(digest)
    if found is None:
        spec = json.loads(job)
        session = Session.from_program(Program.model_validate(spec["program"]), spec["bindings"], spec["store"])
        found = _sessions[digest] = (session, int(spec["run_id"]))
    return found


def evaluate_job(job: str, target: str, bindings: dict[str, Any]) -> dict:
    """Evaluate `target` under `bindings` in the program of `job` (see Mapper.job). Returns
    {"ok": True, "value": encoded value, "key", "seconds", "pid"} or {"ok": False, "error": diagnostic
    JSON, "seconds"}; artifacts come back as their tag and their path relative to the node's directory."""
    started = time.time()
    try:
        session, run_id = _session(job)
        ex = session.executor(run_id)
        value = ex.evaluate(target, bindings, bindings_note=bindings)
        key = ex.plan(target, bindings).key
        return {"ok": True, "value": encode(value, session.store.path(key)), "key": key,
                "seconds": time.time() - started, "pid": os.getpid()}
    except NodeFailed as e:
        return {"ok": False, "error": e.diag.to_json(), "seconds": time.time() - started}
    except CompileError as e:
        return {"ok": False, "error": e.diagnostics[0].to_json(), "seconds": time.time() - started}
