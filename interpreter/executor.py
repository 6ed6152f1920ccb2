"""Execute a plan: demand-driven, cached by key, one node at a time in this process.

`evaluate(node, bindings)` plans the node under the param values `bindings`, returns the stored result when its
key is in the store, and otherwise computes its inputs, runs its operator and commits the result.
A search calls back into `evaluate` with each trial's params, so only the nodes that depend on them
run again. Finished nodes are committed as they finish: a failure or a kill loses nothing finished.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from expc.interpreter.planner import FileHasher, Pending, Plan, PlanError, Planner, PlanNode, plan, result_key, seed_of
from expc.interpreter.runs import Runs
from expc.interpreter.store import Store, StoreError
from expc.interpreter.symbolic import canonical
from expc.runtime.api import Cancelled, MapResult, OpError, Pruned
from expc.runtime.registry import Operator, Registry
from expc.spec.diagnostics import Diagnostic, closest_span
from expc.spec.ir import Program, to_wire


class NodeFailed(Exception):
    """A node could not be computed; carries the diagnostic to show."""

    def __init__(self, diag: Diagnostic):
        super().__init__(diag.message)
        self.diag = diag


@dataclass
class Events:
    """Hooks the CLI uses for progress output; all optional."""

    node_start: Callable[[PlanNode], None] | None = None
    node_done: Callable[[PlanNode, str, float], None] | None = None  # status: ran | cached
    progress: Callable[[str, int, str, str], Callable[[int], None]] | None = None  # (description, total, node, unit)
    warning: Callable[[Diagnostic], None] | None = None


@dataclass
class Executor:
    program: Program
    registry: Registry
    store: Store
    runs: Runs
    run_id: int
    device: str
    bindings: dict[str, Any] = field(default_factory=dict)
    events: Events = field(default_factory=Events)
    cancel: threading.Event = field(default_factory=threading.Event)
    _values: dict[str, Any] = field(default_factory=dict)  # key -> value (this process)
    _hasher: FileHasher = field(default_factory=FileHasher)
    _planners: dict[str, Planner] = field(default_factory=dict)
    _results: dict[str, Any] = field(default_factory=dict)  # values plans depend on (see Pending)
    trail: list[tuple[str, str, str]] = field(default_factory=list)  # (node, key, status) this process
    metric_hook: Callable[[str, str, float, int | None], None] | None = None  # see Context.evaluate
    _mapper: Any = None  # expc.interpreter.mapping.Mapper, made on the first ctx.map

    # -- planning ----------------------------------------------------------------------------------

    def planner(self, bindings: dict[str, Any] | None = None) -> Planner:
        bindings = {**self.bindings, **(bindings or {})}
        k = canonical(bindings)
        p = self._planners.get(k)
        if p is None:
            p = Planner(self.program, self.registry, bindings, self._hasher, results=self._results)
            if len(self._planners) > 256:
                self._planners.clear()
            self._planners[k] = p
        return p

    def plan(self, node_id: str, bindings: dict[str, Any] | None = None) -> PlanNode:
        """Plan `node_id`; a node that needs another node's result (node(sweep.best)) is planned once
        that result exists: the executor computes it, hands it to the planner, and plans again."""
        while True:
            try:
                return self.planner(bindings).plan(node_id)
            except PlanError as e:
                raise NodeFailed(e.diag) from None
            except Pending as p:
                self._results[result_key(p.waits_for, p.bindings)] = self.evaluate(p.waits_for, p.bindings)

    def plan_all(self, targets: list[str] | None = None) -> Plan:
        """The Plan of `targets` (default: the declared nodes) under this executor's bindings."""
        try:
            return plan(self.program, self.registry, self.bindings, targets, self._hasher, self._results)
        except PlanError as e:
            raise NodeFailed(e.diag) from None

    # -- execution ---------------------------------------------------------------------------------

    def execute(self, pn: PlanNode) -> Any:
        """Compute one planned node (its inputs come first in a Plan, so they are loaded, not run)."""
        if self.cancel.is_set():
            raise Cancelled()
        return self._run(pn, None)

    def mapper(self):
        """What ctx.map runs on (expc.interpreter.mapping); its worker pools live until close()."""
        if self._mapper is None:
            from expc.interpreter.mapping import Mapper

            self._mapper = Mapper(self)
        return self._mapper

    def close(self) -> None:
        """Stop the worker processes (or the local Ray instance) that ctx.map started."""
        if self._mapper is not None:
            self._mapper.close()
            self._mapper = None

    def evaluate(self, node_id: str, bindings: dict[str, Any] | None = None, bindings_note: dict | None = None) -> Any:
        if self.cancel.is_set():
            raise Cancelled()
        pn = self.plan(node_id, bindings)
        return self._run(pn, bindings_note)

    def discard(self, node_id: str, bindings: dict[str, Any], names: set[str]) -> int:
        """Remove from the store the results of `node_id` under `bindings` and of its inputs that depend
        on the params `names` (what a search trial computed for itself); results the run's own plan
        uses (the declared nodes under this run's bindings) are kept. Returns how many went."""
        removed, seen = 0, set()
        stack = [self.plan(node_id, bindings)]
        while stack:
            pn = stack.pop()
            if pn.key in seen or not names & set(pn.params_used):
                continue  # shared upstream work stays
            seen.add(pn.key)
            stack.extend(self.plan(nid, dict(pn.bound)) for _, nid, _ in pn.inputs)
            try:
                own = self.plan(pn.id).key
            except NodeFailed:  # a param without a default: no declared result to protect
                own = None
            if pn.key != own and self.store.remove(pn.key):
                self._values.pop(pn.key, None)
                removed += 1
        return removed

    def _run(self, pn: PlanNode, bindings_note: dict | None) -> Any:
        bindings = dict(pn.bound)  # a bind's target runs under the bind's params
        if pn.key in self._values:
            return self._values[pn.key]
        if self.store.has(pn.key):
            value = self._load(pn)
            self.runs.node(self.run_id, pn.display, pn.key, pn.op, "cached", bindings=bindings_note)
            self.trail.append((pn.display, pn.key, "cached"))
            if self.events.node_done:
                self.events.node_done(pn, "cached", 0.0)
            self._values[pn.key] = value
            return value
        # inputs first (each cached or computed), then this node
        inputs: dict[str, Any] = {}
        for path, nid, members in pn.inputs:
            v = self.evaluate(nid, bindings)
            for m in members:
                try:
                    v = v[m]
                except (KeyError, TypeError, IndexError):
                    raise NodeFailed(self._diag(pn, f"the result of '{nid}' has no member '{m}'", path)) from None
            inputs[path] = v
        if self.cancel.is_set():
            raise Cancelled()
        value = self._execute(pn, inputs, bindings_note)
        self._values[pn.key] = value
        return value

    def _load(self, pn: PlanNode) -> Any:
        try:
            return self.store.load(pn.key)
        except StoreError as e:
            raise NodeFailed(self._diag(pn, str(e), None)) from None

    def _execute(self, pn: PlanNode, inputs: dict[str, Any], bindings_note: dict | None) -> Any:
        op = self.registry.get(pn.op)
        # validated once, when planned: the loaded inputs take the place of their references
        fields = {path.split(".")[0] for path in inputs}
        params = pn.params.model_copy(update=_substitute({k: pn.args[k] for k in fields}, inputs))
        tmp = self.store.new_tmp(pn.key)
        ctx = RunContext(self, pn, tmp, self.store.work(pn.key))
        if self.events.node_start:
            self.events.node_start(pn)
        started = time.time()
        try:
            # inline values (es(...), tpe(...)) reach the operator as the objects their operators build
            result = op.fn(self.registry.built(params, ctx), ctx)
        except Cancelled as e:
            self.store.discard(tmp)
            status = "pruned" if isinstance(e, Pruned) else "cancelled"
            self.runs.node(self.run_id, pn.display, pn.key, pn.op, status, started, time.time() - started,
                           bindings_note)
            raise
        except OpError as e:
            self.store.discard(tmp)
            diag = self._diag(pn, f"{pn.display}: {e.message}", e.field, e.hint, e.code)
            self.runs.node(self.run_id, pn.display, pn.key, pn.op, "failed", started, time.time() - started,
                           bindings_note, e.message)
            raise NodeFailed(diag) from None
        except (NodeFailed, KeyboardInterrupt):
            self.store.discard(tmp)
            raise
        except Exception as e:  # an operator bug: keep the traceback in a log, show one clear line
            self.store.discard(tmp)
            log = self.store.root / "logs"
            log.mkdir(exist_ok=True)
            logfile = log / f"{pn.key[:16]}.txt"
            logfile.write_text(traceback.format_exc(), encoding="utf-8")
            self.runs.node(self.run_id, pn.display, pn.key, pn.op, "failed", started, time.time() - started,
                           bindings_note, repr(e))
            raise NodeFailed(self._diag(
                pn, f"operator {pn.op} failed on '{pn.display}': {type(e).__name__}: {e}", None,
                f"this is a bug in the operator; the traceback is in {logfile}", "E699",
            )) from None
        try:
            value = self.store.commit(pn.key, tmp, result)
        except StoreError as e:
            self.store.discard(tmp)
            raise NodeFailed(self._diag(pn, str(e), None)) from None
        seconds = time.time() - started
        self.runs.node(self.run_id, pn.display, pn.key, pn.op, "ran", started, seconds, bindings_note)
        self.trail.append((pn.display, pn.key, "ran"))
        if self.events.node_done:
            self.events.node_done(pn, "ran", seconds)
        return value

    def _diag(self, pn: PlanNode, message: str, field: str | None, hint: str | None = None,
              code: str = "E600") -> Diagnostic:
        node = self.program.nodes.get(pn.id)
        span = closest_span(node.arg_spans, field or "", node.span) if node is not None else None
        return Diagnostic(code, message, span, hint=hint)


def _substitute(args: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """Put input values in place of their {"$ref"} dicts, by args path."""

    def go(value: Any, path: str) -> Any:
        if path in inputs:
            return inputs[path]
        if isinstance(value, dict):
            return {k: go(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [go(v, f"{path}.{i}") for i, v in enumerate(value)]
        return value

    return {k: go(v, k) for k, v in args.items()}


class RunContext:
    """The Context (expc.runtime.api) given to an operator."""

    def __init__(self, ex: Executor, pn: PlanNode, out_dir: Path, work_dir: Path):
        self._ex = ex
        self._pn = pn
        s = ex.program.settings
        self.node = pn.display
        self.key = pn.key
        self.out_dir = out_dir
        self.work_dir = work_dir
        self.dtype = s.dtype
        self.seed = seed_of(ex.program, dict(pn.bound))  # a replicate binds experiment.seed
        self.workers = s.workers
        self.backend = s.backend
        self.address = s.address
        self.bindings = dict(ex.bindings)

    @property
    def device(self) -> str:
        """The device to compute on; "auto" is resolved (which imports torch) when an operator asks,
        so a run whose nodes are all cached never imports torch."""
        from expc.runtime.device import resolve

        return resolve(self._ex.device)

    def log(self, name: str, value: float, step: int | None = None) -> None:
        self._ex.runs.metric(self._ex.run_id, self.node, self.key, name, value, step)
        if self._ex.metric_hook is not None:
            self._ex.metric_hook(self.node, name, float(value), step)

    def progress(self, total: int, description: str, unit: str = "step") -> Callable[[int], None]:
        if self._ex.events.progress:
            return self._ex.events.progress(description or self.node, total, self.node, unit)
        return lambda n=1: None

    def check_cancelled(self) -> None:
        if self._ex.cancel.is_set():
            raise Cancelled()

    def warn(self, message: str, field: str | None = None) -> None:
        if self._ex.events.warning:
            d = self._ex._diag(self._pn, message, field)
            self._ex.events.warning(Diagnostic("W600", d.message, d.span, severity="warning"))

    def evaluate(self, target: str, bindings: dict[str, Any],
                 on_metric: Callable[[str, str, float, int | None], None] | None = None) -> Any:
        previous = self._ex.metric_hook
        self._ex.metric_hook = on_metric
        try:
            return self._ex.evaluate(target, self._under(bindings), bindings_note=bindings)
        finally:
            self._ex.metric_hook = previous

    def map(self, target: str, bindings: list[dict[str, Any]], *, parallel: int | None = None,
            on_metric: Callable[[int, str, str, float, int | None], None] | None = None,
            in_process: bool = False) -> list[MapResult]:
        return self._ex.mapper().map(target, [self._under(b) for b in bindings], parallel, on_metric,
                                     in_process, caller=self._pn)

    def plan_key(self, target: str, bindings: dict[str, Any]) -> str:
        return self._ex.plan(target, self._under(bindings)).key

    def discard(self, target: str, bindings: dict[str, Any]) -> int:
        return self._ex.discard(target, self._under(bindings), set(bindings))

    def _under(self, bindings: dict[str, Any]) -> dict[str, Any]:
        """The bindings this node itself runs under (a search trial's params around a nested replicate,
        a bind's params), with the given ones on top: what it evaluates sees what it was given."""
        return {**dict(self._pn.bound), **bindings}

    def params_of(self, target: str) -> list[str]:
        from expc.interpreter.graph import params_used

        return sorted(params_used(target, self._ex.program.nodes, self._ex.registry))

    def distribution(self, name: str):
        """The validated distribution of a searched param (`param NAME ~ DIST`), or None."""
        p = self._ex.program.params.get(name)
        return self._ex.registry.distribution(to_wire(p.dist)) if p is not None and p.dist is not None else None


    def metrics(self, key: str, name: str | None = None) -> list[tuple]:
        return self._ex.runs.metrics_for(key, name)

    def node_runs(self, key: str) -> list[tuple]:
        """(node, status, seconds, run_id) of every execution of a key (for measured costs in reports)."""
        return self._ex.runs.runs_of_key(key)

    def operator(self, name: str) -> Operator | None:
        return self._ex.registry.get(name)
