"""A run's results as data: one `Result` per declared node, for scripts (`expc run/show --json`),
notebooks (`expc.run`, `expc.load`) and the tables `expc run` and `expc show` print.

    r = expc.run("examples/dem.exp", overrides=["steps=20"])
    r["ppl_dem"].value          # a metric: its number (also r.metric("ppl_dem"))
    r["base"].path              # a model or a dataset: its directory in the store
    r["sweep"]["trials"]        # a member of a record-like result (a search, a report)
    r.to_json()                 # what `expc run --json` prints

Values come from the store, exact and complete; the run registry's small summary of a result is only
a fallback for results whose store directory was removed. One-line summaries come from the value
types' declared `summary` (expc.runtime.types), else from a short generic rendering.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expc.runtime.api import Artifact


class RunFailed(Exception):
    """`expc.run` when a node failed: the rendered diagnostic, and the results the run finished."""

    def __init__(self, message: str, results: "Results"):
        super().__init__(message)
        self.results = results


@dataclass(frozen=True)
class Result:
    """One declared node's result. `data` is the value as the store holds it (JSON, with artifacts
    as Artifact objects); `value` is the plain form: a metric's number, an artifact's directory."""

    name: str
    kind: str | None
    op: str
    type: str | None  # a type expression (`split[data]`); None for runs recorded before types were kept
    key: str
    data: Any
    summary: str
    dir: Path | None = None  # its directory in the store; files a result names (plots) are relative to it

    @property
    def value(self) -> Any:
        """A number for a result with a numeric `value` member (a metric); otherwise the result with
        every artifact replaced by its directory (a model or dataset: a Path)."""
        if isinstance(self.data, dict) and _is_number(self.data.get("value")):
            return self.data["value"]
        return _plain(self.data)

    @property
    def path(self) -> Path | None:
        """The directory of an artifact result (a model, a dataset, a POET run); None for others."""
        return Path(self.data.path) if isinstance(self.data, Artifact) else None

    @property
    def artifact(self) -> Artifact | None:
        return self.data if isinstance(self.data, Artifact) else None

    def __getitem__(self, member: str) -> Any:
        """A member of a record-like result (`sweep["best"]`, `parts["train"]`), in plain form."""
        if isinstance(self.data, dict):
            return _plain(self.data[member])
        if isinstance(self.data, Artifact) and member in type(self.data).model_fields:
            return _plain(getattr(self.data, member))
        raise KeyError(f"{self.name} ({self.type or 'a value'}) has no member {member!r}")

    def to_json(self) -> dict:
        return {"node": self.name, "kind": self.kind, "op": self.op, "type": self.type, "key": self.key,
                "summary": self.summary, "path": str(self.path) if self.path else None,
                "dir": str(self.dir) if self.dir else None, "value": to_json(self.data)}

    def __repr__(self) -> str:
        return f"<{self.name}: {self.summary}>"


@dataclass(eq=False)
class Results(Mapping):
    """The declared results of one run, by node name, with what the run did."""

    run_id: int
    status: str  # ok | failed | cancelled | interrupted | running
    file: str
    experiment: str
    store: Path
    overrides: list[str]
    nodes: dict[str, Result]
    ran: list[str] = field(default_factory=list)  # nodes this run computed (anonymous ones too)
    cached: list[str] = field(default_factory=list)  # nodes it found in the store
    failure: dict | None = None  # the failed node's diagnostic, as JSON
    warnings: list[dict] = field(default_factory=list)

    def __getitem__(self, name: str) -> Result:
        try:
            return self.nodes[name]
        except KeyError:
            from expc.spec.diagnostics import did_you_mean

            hint = did_you_mean(name, list(self.nodes))
            raise KeyError(f"run {self.run_id} has no result '{name}'" + (f"; {hint}" if hint else "")) from None

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def metric(self, name: str) -> float:
        """The number of a metric result (its `.value`)."""
        v = self[name].value
        if not _is_number(v):
            raise TypeError(f"'{name}' is not a number or a metric: {self[name].summary}")
        return v

    @property
    def run_dir(self) -> Path:
        return self.store / "runs" / str(self.run_id)

    def to_json(self) -> dict:
        return {"run": self.run_id, "status": self.status, "experiment": self.experiment, "file": self.file,
                "overrides": self.overrides, "store": str(self.store), "run_dir": str(self.run_dir),
                "ran": self.ran, "cached": self.cached, "failure": self.failure, "warnings": self.warnings,
                "results": {name: r.to_json() for name, r in self.nodes.items()}}

    def __repr__(self) -> str:
        lines = [f"run {self.run_id} of {self.experiment} ({Path(self.file).name}): {self.status}"]
        width = max((len(n) for n in self.nodes), default=0)
        lines += [f"  {name.ljust(width)}  {r.summary}" for name, r in self.nodes.items()]
        return "\n".join(lines)


# -- building ----------------------------------------------------------------------------------------


def from_session(session, result) -> Results:
    """The results of a run that just finished in this process (`expc run`, `expc.run`)."""
    types = session.registry.types
    keys = {node: key for node, key, *_ in session.runs.typed_results(result.run_id)}
    nodes = {}
    for name, value in result.results.items():
        node = session.program.nodes[name]
        key = keys.get(name, "")
        nodes[name] = Result(name, node.kind, node.op, node.type, key, value, summarize(types, node.type, value),
                             _dir(session.store, key))
    ran, cached = _what_ran((n, s) for n, _, s in result.trail)
    failure = result.failure.to_json() if result.failure is not None else None
    return Results(result.run_id, result.status, session.program.file, session.program.settings.name,
                   Path(session.store.root), list(session.overrides), nodes, ran, cached, failure,
                   [d.to_json() for d in session.warnings])


def from_registry(store_root: str | Path, run_id: int | None = None, registry=None) -> Results:
    """A recorded run (the last one when run_id is None) from a store's run registry and objects."""
    from expc.interpreter.runs import Runs
    from expc.interpreter.store import Store, StoreError

    if registry is None:
        from expc.runtime.registry import load_registry

        registry = load_registry()
    root = Path(store_root).resolve()
    if not (root / "runs.sqlite").is_file():
        raise FileNotFoundError(f"no runs in {root}")
    runs = Runs(root)
    try:
        row = runs.run_row(run_id)
        if row is None:
            raise LookupError(f"no run {run_id} in {root}" if run_id is not None else f"no runs in {root}")
        rid, file, exp, _command, overrides, _started, _finished, status = row
        executions = runs.node_runs(rid)
        ops = {n: op for n, _, op, *_ in reversed(executions)}
        artifacts = registry.types.artifact_classes()
        store = Store(root, artifacts)
        nodes = {}
        for name, key, kind, type_, summary in runs.typed_results(rid):
            op = ops.get(name, "")
            try:
                value = store.load(key) if store.has(key) else _decode_summary(json.loads(summary), artifacts)
            except (StoreError, ValueError):
                value = _decode_summary(json.loads(summary), artifacts)
            if type_ is None:  # a run recorded before types were kept
                type_ = _guess_type(registry, op, value)
            nodes[name] = Result(name, kind, op, type_, key, value, summarize(registry.types, type_, value),
                                 _dir(store, key))
        ran, cached = _what_ran((n, s) for n, _, _, s, *_ in executions)
        failed = [(n, err) for n, _, _, s, _, _, err in executions if s == "failed"]
        failure = {"node": failed[-1][0], "message": failed[-1][1]} if failed else None
        return Results(rid, status, file, exp or "", root, json.loads(overrides or "[]"), nodes, ran, cached,
                       failure)
    finally:
        runs.close()


def _guess_type(registry, op: str, value: Any) -> str | None:
    """The operator's declared return type, or, where that names an argument's type (`{data}`), the
    type declaring the value's artifact class."""
    o = registry.get(op)
    if o is not None and "{" not in o.returns:
        return o.returns
    for t in registry.types.declared.values():
        if t.artifact is not None and isinstance(value, t.artifact):
            return t.name
    return None


def _dir(store, key: str) -> Path | None:
    return store.path(key) if key and store.has(key) else None


def _what_ran(trail) -> tuple[list[str], list[str]]:
    """Nodes computed at least once, and nodes only found in the store (a search evaluates the same
    node once per trial: each appears once)."""
    status: dict[str, str] = {}
    for node, s in trail:
        if s == "ran" or node not in status:
            status[node] = s
    return [n for n, s in status.items() if s == "ran"], [n for n, s in status.items() if s == "cached"]


def _decode_summary(value: Any, artifacts: dict[str, type]) -> Any:
    """The registry's summary back into values: artifacts (tag, fields, path) become Artifacts."""
    if isinstance(value, dict):
        if "$artifact" in value and "path" in value:
            body = {k: v for k, v in value.items() if k != "path"}
            try:
                return Artifact.from_json(body, Path(value["path"]), artifacts)
            except (KeyError, ValueError):  # an artifact type no longer declared, or changed fields
                return value
        return {k: _decode_summary(v, artifacts) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_summary(v, artifacts) for v in value]
    return value


# -- summaries and JSON ------------------------------------------------------------------------------


def summarize(types, type_name: str | None, value: Any) -> str:
    """One short line for a result: its type's declared summary, else a generic rendering."""
    if types is not None and type_name:
        try:
            text = types.summary(type_name, value)
        except Exception:  # a summary is a convenience: one that trips on an odd value must not stop a run
            text = None
        if text:
            return text
    return generic_summary(value)


def generic_summary(value: Any, width: int = 80) -> str:
    """A result of a type that declares no summary: its number, its first members, or its size."""
    if isinstance(value, Artifact):
        fields = [(k, v) for k, v in value.model_dump(exclude={"path"}).items() if _is_number(v)][:4]
        return value.tag + (" (" + ", ".join(f"{k}={_num(v)}" for k, v in fields) + ")" if fields else "")
    if isinstance(value, dict) and _is_number(value.get("value")):
        extra = [(k, v) for k, v in value.items() if k != "value" and (_is_number(v) or isinstance(v, str))][:4]
        return _num(value["value"]) + ("  (" + ", ".join(f"{k}={_num(v)}" for k, v in extra) + ")" if extra else "")
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v)}" for k, v in value.items())
        return _cut(text or "{}", width)
    if isinstance(value, list):
        return _cut(f"{len(value)} items: " + ", ".join(_short(v) for v in value[:8]), width) if value else "[]"
    return _cut(_short(value), width)


def _short(v: Any) -> str:
    if isinstance(v, Artifact):
        return v.tag
    if isinstance(v, dict):
        return f"{{{len(v)} members}}"
    if isinstance(v, list):
        return f"[{len(v)} items]"
    if isinstance(v, str):
        return v if len(v) <= 24 else v[:21] + "..."
    return "-" if v is None else _num(v)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _plain(value: Any) -> Any:
    if isinstance(value, Artifact):
        return Path(value.path)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_json(value: Any) -> Any:
    """JSON for a result: artifacts by tag, fields and absolute directory."""
    if isinstance(value, Artifact):
        return {**value.to_json(), "path": str(Path(value.path).resolve())}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# -- the Python API (expc.run, expc.load) -------------------------------------------------------------


def run(path: str | Path, overrides: list[str] | dict[str, Any] | None = None, cache: str | Path | None = None,
        *, progress: bool = False) -> Results:
    """Run an experiment file like `expc run` (cached: only what changed reruns) and return its
    results. `overrides`: `["lr=1e-3", "m.steps=50"]` or `{"lr": 1e-3}`; `cache`: the store
    directory (default .expc). A check error raises CompileError; a failed node raises RunFailed,
    which carries the results that finished. With progress=True, progress goes to stderr."""
    from expc.interpreter.session import Session

    session = Session.open(path, _override_list(overrides), cache)
    console = None
    if progress:
        from expc.interpreter.console import Console

        console = Console()
    try:
        result = session.run(events=console.events() if console else None)
    finally:
        if console is not None:
            console.close()
    results = from_session(session, result)
    if result.status == "interrupted":
        raise KeyboardInterrupt
    if result.failure is not None:
        from expc.spec.diagnostics import render

        raise RunFailed(render([result.failure], session.sources), results)
    return results


def load(run_or_store: int | str | Path | None = None, run: int | None = None) -> Results:
    """The results of a recorded run: `load()` the last run in .expc, `load(3)` run 3 there,
    `load("path/to/store")` its last run, `load("path/to/store", run=3)`, or `load("STORE/runs/3")`."""
    from expc.interpreter.session import DEFAULT_STORE

    if isinstance(run_or_store, int) and not isinstance(run_or_store, bool):
        store, run = Path(DEFAULT_STORE), run_or_store
    else:
        store = Path(run_or_store if run_or_store is not None else DEFAULT_STORE)
        # a run's directory of links, STORE/runs/<id>
        if not (store / "runs.sqlite").exists() and store.name.isdigit() and store.parent.name == "runs":
            store, run = store.parent.parent, run if run is not None else int(store.name)
    return from_registry(store, run)


def _override_list(overrides: list[str] | dict[str, Any] | None) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):  # values as JSON, which the override parser reads back exactly
        return [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    return [str(o) for o in overrides]
