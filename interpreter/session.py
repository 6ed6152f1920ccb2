"""A session: a compiled program bound to a store, ready to plan and run (used by run, watch, workers)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expc.interpreter.compiler import compile
from expc.interpreter.executor import Events, Executor, NodeFailed
from expc.interpreter.hashing import FileHasher
from expc.interpreter.planner import explain, plan, remembered
from expc.interpreter.runs import Runs
from expc.interpreter.store import Store
from expc.runtime.api import Cancelled
from expc.runtime.registry import Registry, load_registry
from expc.spec.diagnostics import Diagnostic, SourceCache
from expc.spec.ir import Program

DEFAULT_STORE = ".expc"


@dataclass
class Session:
    file: str
    program: Program
    bindings: dict[str, Any]
    store: Store
    runs: Runs
    registry: Registry
    sources: SourceCache
    overrides: list[str] = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @classmethod
    def open(cls, file: str | Path, overrides: list[str] | None = None, cache: str | Path | None = None,
             registry: Registry | None = None, sources: SourceCache | None = None,
             settings: dict | None = None) -> "Session":
        """Compile with the overrides applied and bind; raises CompileError (exit 1), or OverrideError
        (a CompileError, exit 2) for problems the overrides cause."""
        registry = registry or load_registry()
        sources = sources or SourceCache()
        compiled = compile(file, registry, sources, overrides=list(overrides or []))
        program, bindings = compiled.program, compiled.bindings
        if settings:
            program = program.model_copy(update={"settings": program.settings.model_copy(update=settings)})
        _check_device(program)
        store = Store(cache or DEFAULT_STORE, registry.types.artifact_classes())
        store.sweep_tmp()  # half-written results of runs killed more than an hour ago
        return cls(str(file), program, bindings, store, Runs(store.root), registry, sources, list(overrides or []),
                   compiled.warnings)

    @classmethod
    def from_program(cls, program: Program, bindings: dict[str, Any], cache: str | Path,
                     registry: Registry | None = None) -> "Session":
        """A session for a program already checked elsewhere (a worker of ctx.map gets the parent's IR
        and its fixed params): nothing is read from the source files, so the worker runs the program
        the parent compiled even if a file changed since."""
        _check_device(program)
        registry = registry or load_registry()
        store = Store(cache, registry.types.artifact_classes())
        return cls(program.file, program, dict(bindings), store, Runs(store.root), registry,
                   SourceCache())

    def executor(self, run_id: int, events: Events | None = None, cancel: threading.Event | None = None) -> Executor:
        # the device stays "auto" until an operator asks (RunContext.device): no torch for cached runs;
        # file digests are kept in the store's registry (expc.interpreter.hashing)
        return Executor(
            program=self.program, registry=self.registry, store=self.store, runs=self.runs, run_id=run_id,
            device=self.program.settings.device, bindings=dict(self.bindings), events=events or Events(),
            cancel=cancel or threading.Event(), _hasher=FileHasher(self.runs),
        )

    def dry_run(self) -> list[tuple[str, str, str, str]]:
        """(node, op, status, why) for every declared node and its inputs, in execution order."""
        the_plan = plan(self.program, self.registry, self.bindings)
        rows: list[tuple[str, str, str, str]] = []
        for pn in the_plan:
            if self.store.has(pn.key):
                rows.append((pn.display, pn.op, "cached", pn.key[:12]))
            else:
                prev = self.runs.last_state(self.program.file, pn.display)
                rows.append((pn.display, pn.op, "run", explain(prev[1] if prev else None, pn)))
        for nid, waits_for in the_plan.pending:
            rows.append((nid, self.program.nodes[nid].op, "pending", f"planned after {waits_for} runs"))
        return rows

    def run(self, events: Events | None = None, cancel: threading.Event | None = None,
            command: str = "run", targets: list[str] | None = None) -> "RunResult":
        run_id = self.runs.start_run(self.program.file, self.program.settings.name, command, self.overrides)
        ex = self.executor(run_id, events, cancel)
        results: dict[str, Any] = {}
        status = "ok"
        failure: Diagnostic | None = None
        try:
            # compile -> plan -> execute: the plan's nodes in dependency order, then the declared results
            # (cached by then), and the nodes that could only be planned once a result existed
            for pn in ex.plan_all(targets):
                ex.execute(pn)
            for nid in targets or self.program.decls:
                results[nid] = ex.evaluate(nid)
                pn = ex.plan(nid)
                self.runs.remember(self.program.file, nid, pn.key, remembered(pn))
                node = self.program.nodes[nid]
                self.runs.result(run_id, nid, pn.key, node.kind, _summary(results[nid]), node.type)
                self._link(run_id, nid, pn.key)
        except NodeFailed as e:
            status, failure = "failed", e.diag
        except Cancelled:
            status = "cancelled"
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            ex.close()  # the workers ctx.map started
            self.runs.finish_run(run_id, status)
        return RunResult(run_id, status, results, failure, ex.trail)

    def run_dir(self, run_id: int) -> Path:
        """STORE/runs/<id>/: one link per declared result of the run, to its directory in the store, so
        a run's models, plots and logs are found by name (`.expc/runs/3/results/00_history_sweep.png`)."""
        return self.store.root / "runs" / str(run_id)

    def _link(self, run_id: int, node: str, key: str) -> None:
        target = self.store.path(key)
        if not target.is_dir():
            return
        link = self.run_dir(run_id) / node
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(target, target_is_directory=True)
        except FileExistsError:
            pass
        except OSError:  # no symlinks here (some file systems): the registry still has the key
            pass


def _check_device(program: Program) -> None:
    from expc.runtime.device import available
    from expc.spec.diagnostics import CompileError

    problem = available(program.settings.device)
    if problem:
        span = program.settings_spans.get("device")
        raise CompileError([Diagnostic("E007", f"device \"{program.settings.device}\": {problem}", span,
                                       hint='use device = "auto" to take a GPU only where there is one')])


@dataclass
class RunResult:
    run_id: int
    status: str  # ok | failed | cancelled | interrupted
    results: dict[str, Any]
    failure: Diagnostic | None
    trail: list[tuple[str, str, str]]  # (node, key, ran|cached)

    @property
    def ran(self) -> list[str]:
        return [n for n, _, s in self.trail if s == "ran"]


def _summary(value: Any) -> Any:
    """A small JSON summary of a result for the registry (artifacts by tag, fields and path), enough to
    summarize it when its stored result is gone (see expc.interpreter.results)."""
    from expc.runtime.api import Artifact

    if isinstance(value, Artifact):
        return {**value.to_json(), "path": str(value.path)}
    if isinstance(value, dict):
        return {k: _summary(v) for k, v in list(value.items())[:50]}
    if isinstance(value, list):
        return [_summary(v) for v in value[:50]]
    return value
