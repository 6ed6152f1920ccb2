"""The contract between the interpreter and operators. No torch here.

An operator is called as `fn(p, ctx)`: `p` is its params model with every input field replaced by the
loaded value of the input node; `ctx` is a `Context`. It returns a JSON value (number, string, bool,
list, dict), an `Artifact` (files in `ctx.out_dir`), or a dict/list containing artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from expc.runtime.registry import Distribution, Operator


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


def node_seed(own: int | None, experiment: int) -> int:
    """The seed an operator draws with: its own `seed` argument with the experiment's seed (ctx.seed)
    folded in, so that `experiment { seed = 3 }` and a replicate under seed 3 change what every node
    draws. With the experiment seed 0 it is the operator's own seed, unchanged."""
    own = int(own or 0)
    if not experiment:
        return own
    return (own * 1_000_003 + int(experiment) * 7_919 + 104_729) % (2**31 - 1)


class Artifact(BaseModel):
    """A value that lives as files in its node's store directory (a model, a dataset, a POET run).

    Subclasses declare a unique `tag` and JSON-able fields; `path` is the directory and is never stored,
    so a value stays valid when the store renames its temporary directory into place.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    tag: ClassVar[str] = ""
    path: Path

    def to_json(self) -> dict:
        return {"$artifact": self.tag, **self.model_dump(mode="json", exclude={"path"})}

    @staticmethod
    def from_json(data: dict, path: Path, classes: dict[str, type["Artifact"]] | None = None) -> "Artifact":
        """Decode a stored artifact. `classes` (tag -> class) come from the registry's value types (the
        store passes them); without them, the loaded subclasses of Artifact are searched by tag."""
        tag = data["$artifact"]
        cls = (classes or {}).get(tag) or _subclass_with_tag(Artifact, tag)
        if cls is None:
            raise KeyError(f"unknown artifact type {tag!r} in the store")
        body = {k: v for k, v in data.items() if k != "$artifact"}
        return cls.model_validate({**body, "path": path})


def _subclass_with_tag(cls: type, tag: str) -> type | None:
    for sub in cls.__subclasses__():
        if sub.__dict__.get("tag") == tag:
            return sub
        found = _subclass_with_tag(sub, tag)
        if found is not None:
            return found
    return None


MetricHook = Callable[[str, str, float, int | None], None]
"""`on_metric(node, name, value, step)`: sees each metric the nodes computed for an evaluation log."""


@dataclass(frozen=True)
class MapResult:
    """What one binding of `Context.map` gave: the target's value, or why there is none.

    A failure keeps the interpreter's own exception in `error`: raising it fails the calling node with
    the diagnostic of the node that failed (in this process or in a worker), exactly as if the calling
    node had evaluated it itself. A binding stopped by `on_metric` raising Pruned is `pruned` (its
    `error` is that Pruned), so a search can tell a pruned trial from a failed or a finished one.
    """

    value: Any = None
    error: BaseException | None = None
    pruned: bool = False
    seconds: float = 0.0  # wall time of this binding's evaluation

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def message(self) -> str:
        return "" if self.error is None else str(self.error)

    def get(self) -> Any:
        """The value, or raise the failure."""
        if self.error is not None:
            raise self.error
        return self.value


class Context(Protocol):
    """What an operator may ask of the interpreter while it runs: every member an operator uses is
    declared here (tests' fake contexts implement the ones their operators need)."""

    node: str
    """The node's display name, e.g. "m_math" or "dem.expr"."""
    key: str
    """The node's content key (hex)."""
    out_dir: Path
    """Write result files here; moved into the store atomically on success."""
    work_dir: Path
    """Persistent scratch for this key (checkpoints): survives a kill, removed on success."""
    device: str
    """The resolved device: "cpu" or "cuda"."""
    dtype: str
    """The experiment's dtype, e.g. "float32"."""
    seed: int
    """The experiment's seed."""
    workers: int
    """The experiment's `workers`: processes (or Ray tasks) an operator may use at once."""
    backend: str
    """The experiment's backend: "local" (this machine) or "ray"."""
    address: str | None
    """The Ray cluster to join with backend "ray" (None: start a local Ray instance)."""
    bindings: dict[str, Any]
    """Params fixed for this run (command-line overrides), name -> value: a search leaves them alone."""

    def log(self, name: str, value: float, step: int | None = None) -> None:
        """Record a metric (run registry); steps make curves."""

    def progress(self, total: int, description: str, unit: str = "step") -> Callable[[int], None]:
        """A progress bar; call the result with the number of units advanced. `unit` names what `total`
        counts ("step", "trial", ...); "B" counts bytes (shown as MB and MB/s)."""

    def check_cancelled(self) -> None:
        """Raise Cancelled if this run was superseded; call it between steps of long work."""

    def warn(self, message: str, field: str | None = None) -> None:
        """A warning diagnostic at the span of `field`."""

    def evaluate(self, target: str, bindings: dict[str, Any], on_metric: MetricHook | None = None) -> Any:
        """Plan and run node `target` in this process with params bound (`{"w_math": 0.3}`), reusing
        cached work. `on_metric(node, name, value, step)` sees every metric the nodes computed for it
        log (a search's pruner reports them to Optuna); it may raise Pruned to stop the evaluation.
        A failure raises the interpreter's failure (let it propagate: it carries the diagnostic)."""

    def map(self, target: str, bindings: list[dict[str, Any]], *, parallel: int | None = None,
            on_metric: Callable[[int, str, str, float, int | None], None] | None = None,
            in_process: bool = False) -> list[MapResult]:
        """Evaluate node `target` once per binding; one MapResult per binding, in order.

        Where: in this process when `parallel` is 1 and the backend is "local" (or with
        `in_process`); otherwise up to `parallel` at once (default: the experiment's `workers`) in
        local worker processes, or as Ray tasks with backend "ray". Workers get the checked program,
        not its source file, and share the store, so work done here first is reused there.
        `on_metric(i, node, name, value, step)` sees the metrics logged while binding i is evaluated
        in this process (never in a worker); raising Pruned from it stops that binding.
        Raises Cancelled when the run is superseded."""

    def plan_key(self, target: str, bindings: dict[str, Any]) -> str:
        """The content key node `target` has under `bindings`, without running anything."""

    def discard(self, target: str, bindings: dict[str, Any]) -> int:
        """Remove from the store what evaluating `target` under `bindings` stored and the run's own
        nodes do not use: the results that depend on the bound params (a search trial's trained
        network, kept only for its metrics). Their runs and logged metrics stay in the run registry.
        Returns how many results were removed."""

    def params_of(self, target: str) -> list[str]:
        """The params node `target` depends on (through its inputs), sorted."""

    def distribution(self, name: str) -> Distribution | None:
        """The validated distribution of param `name` when it is searched (`param NAME ~ DIST`), else
        None: what it draws, its range, its grid and its Optuna distribution."""

    def metrics(self, key: str, name: str | None = None) -> list[tuple[str, int | None, float]]:
        """(name, step, value) of every metric logged for the node with content key `key`, in order."""

    def node_runs(self, key: str) -> list[tuple[str, str, float | None, int]]:
        """(node, status, seconds, run_id) of every execution of a key, oldest first (measured costs)."""

    def operator(self, name: str) -> Operator | None:
        """Operator `name` of the registry the program was checked against (None: no such operator):
        the merge algebra finds the tensorwise operators, and their kernels, through it."""


class _Unknown:
    """A value known only when the program runs (a param under search, another node's result)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Producer:
    """What `expc check` knows, before anything runs, about the node an input comes from: its
    operator and its own constant arguments, files resolved to absolute paths (values known only at
    run time are UNKNOWN). An operator's precheck receives one in place of each input reference."""

    op: str
    args: dict[str, Any]


# `@op(..., precheck=fn)`: fn(args) -> problems, called by `expc check` on the lowered program. `args`
# are the node's arguments as above (constants, absolute paths, a Producer per input, else UNKNOWN);
# each problem is an OpError (message, field path such as "models.1", hint, code) that becomes a
# diagnostic at that field's span, with the text the same problem has when the operator runs.
Precheck = Callable[[dict[str, Any]], Iterable[OpError]]
