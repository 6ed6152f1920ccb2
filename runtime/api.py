"""The contract between the interpreter and operators. No torch here.

An operator is called as `fn(p, ctx)`: `p` is its params model with every input field replaced by the
loaded value of the input node; `ctx` is a `Context`. It returns a JSON value (number, string, bool,
list, dict), an `Artifact` (files in `ctx.out_dir`), or a dict/list containing artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict


class OpError(Exception):
    """A problem an operator found with its inputs or params, shown as a diagnostic at the span of
    `field` (a params field name, or a dotted path into it such as "expr.args.1"), or of the node."""

    def __init__(self, message: str, field: str | None = None, hint: str | None = None, code: str = "E600"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint
        self.code = code


class Cancelled(Exception):
    """Raised by ctx.check_cancelled() when the run was superseded (watch mode) or interrupted."""


class Pruned(Cancelled):
    """Raised by a metric hook (see Context.evaluate's on_metric) to stop a search trial early: the
    node being computed is abandoned like a cancelled one (its checkpoints stay in its work dir)."""


class Artifact(BaseModel):
    """A value that lives as files in its node's store directory (a model, a dataset, a POET run).

    Subclasses declare a unique `tag` and JSON-able fields; `path` is the directory and is never stored,
    so a value stays valid when the store renames its temporary directory into place.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    tag: ClassVar[str] = ""
    path: Path

    _by_tag: ClassVar[dict[str, type["Artifact"]]] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        tag = cls.__dict__.get("tag")
        if tag:
            existing = Artifact._by_tag.get(tag)
            if existing is not None and existing.__qualname__ != cls.__qualname__:
                raise TypeError(f"artifact tag {tag!r} declared twice: {existing} and {cls}")
            Artifact._by_tag[tag] = cls

    def to_json(self) -> dict:
        return {"$artifact": self.tag, **self.model_dump(mode="json", exclude={"path"})}

    @staticmethod
    def from_json(data: dict, path: Path) -> "Artifact":
        tag = data["$artifact"]
        cls = Artifact._by_tag.get(tag)
        if cls is None:
            raise KeyError(f"unknown artifact type {tag!r} in the store")
        body = {k: v for k, v in data.items() if k != "$artifact"}
        return cls.model_validate({**body, "path": path})

    def relocated(self, path: Path) -> "Artifact":
        return self.model_copy(update={"path": path})


class Context(Protocol):
    """What an operator may ask of the interpreter while it runs."""

    node: str  # the node's display name, e.g. "m_math" or "dem.expr"
    key: str  # the node's content key (hex)
    out_dir: Path  # write result files here; moved into the store atomically on success
    work_dir: Path  # persistent scratch for this key (checkpoints): survives a kill, removed on success
    device: str  # resolved: "cpu" or "cuda"
    dtype: str  # experiment dtype, e.g. "float32"
    seed: int  # experiment seed
    workers: int
    backend: str  # "local" | "ray"

    def log(self, name: str, value: float, step: int | None = None) -> None:
        """Record a metric (run registry); steps make curves."""

    def progress(self, total: int, description: str) -> Callable[[int], None]:
        """A progress bar; call the result with the number of steps advanced."""

    def check_cancelled(self) -> None:
        """Raise Cancelled if this run was superseded; call it between steps of long work."""

    def warn(self, message: str, field: str | None = None) -> None:
        """A warning diagnostic at the span of `field`."""

    def evaluate(self, target: str, bindings: dict[str, Any],
                 on_metric: Callable[[str, str, float, int | None], None] | None = None) -> Any:
        """Plan and run node `target` with params bound (`{"w_math": 0.3}`), reusing cached work.
        `on_metric(node, name, value, step)` sees every metric the nodes computed for it log (a
        search's pruner reports them to Optuna); it may raise Pruned to stop the evaluation."""

    def worker_spec(self) -> dict:
        """A JSON description (program file, overrides, store) from which another process or a Ray
        task can rebuild an evaluator: see expc.interpreter.remote.evaluate_remote."""
