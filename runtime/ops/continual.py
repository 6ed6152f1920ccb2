"""Continual learning (kind `continual`): a stream of tasks (`tasks`, type `stream`), methods (inline
values of type `method`: `sequential`, `ewc`, `replay`, `adapters`, `ada`), the run of a method over a
stream on a frozen or fine-tuned backbone (`continual`, type `continual`), and its results
(`avg_accuracy`, `forgetting`, `bwt`, `inference_cost`, `n_params`; the plot `matrix(run)`):

    data s = tasks(classes(d, labels = [5, 6]), classes(permute(d, seed = 1), labels = [5, 6]), test = 0.3)
    continual r_ada {
      stream = s
      model = backbone
      method = ada(pool = 2, adapter = adapter(bottleneck = 8, at = "hidden"), score = "leep")
    }
    eval acc = avg_accuracy(r_ada)

ADA (Ermis et al. 2022, "Memory efficient continual learning with transformers"): the backbone stays
frozen; each task trains an adapter and a head; while the pool has room the adapter joins it,
afterwards the pool adapter that transfers best to the new task (LEEP or TransRate, runtime/continual/
transfer.py) and the new adapter are distilled into that slot. The torch code is in
expc.runtime.continual (imported only when a run runs)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from expc.runtime.api import OpError, Producer, node_seed
from expc.runtime.continual.stream import Stream
from expc.runtime.registry import Input, Params, Variadic, op
from expc.runtime.types import Shown, value_type


def _stream_summary(v) -> str | None:
    if not isinstance(v, Stream):
        return None
    shape = "×".join(str(s) for s in v.shape)
    return (f"{v.n_tasks} tasks of {shape} examples ({sum(v.n_train):,} train, {sum(v.n_test):,} test), "
            f"classes {v.classes}")


STREAM = value_type("stream", "a sequence of labelled tasks, each split into train and test (tasks(...))",
                    kinds={"data"}, artifact=Stream, summary=_stream_summary)
METHOD = value_type("method", "a continual-learning method: sequential(), ewc(...), replay(...), adapters(...), "
                    "ada(...)", node=False)
ADAPTER = value_type("adapter", "an adapter: adapter(bottleneck, at)", node=False)
DISTILL = value_type("distill", "ADA's distillation settings: distill(steps, batch, lr, temperature)", node=False)


def _run_summary(v) -> str | None:
    if not isinstance(v, dict) or "matrix" not in v:
        return None
    return (f"{v['method']} over {v['tasks']} tasks: avg accuracy {v['avg_accuracy']:.3f}, forgetting "
            f"{v['forgetting']:+.3f}, BWT {v['bwt']:+.3f}, {v['n_params']['value']:,} parameters, {v['seconds']:.1f} s")


def _run_shown(v) -> Shown | None:
    """The accuracy matrix, R[i][j] = accuracy on task j after training task i."""
    if not isinstance(v, dict) or "matrix" not in v:
        return None
    R = v["matrix"]
    T = len(R[0]) if R else 0
    rows = tuple((f"after t{i}", *(f"{x:.3f}" if x is not None else "-" for x in row)) for i, row in enumerate(R))
    return Shown(title=f"accuracy matrix of {v['method']} (row: after training task i; column: task j)",
                 headers=("", *(f"t{j}" for j in range(T))), rows=rows, files=("matrix.png",) if v.get("plot") else ())


CONTINUAL = value_type(
    "continual", "a continual-learning run: its accuracy matrix and what the method keeps",
    kinds={"continual"}, summary=_run_summary, show=_run_shown,
    members={"matrix": "list", "avg_accuracy": "number", "forgetting": "number", "bwt": "number",
             "n_params": "record", "inference_cost": "int", "seconds": "number", "choices": "list"},
)


# ------------------------------------------------------------------------------------------------ stream


class TasksParams(Params):
    tasks: Annotated[list[Input["tensors"]], Variadic()] = Field(
        min_length=1, description="the tasks in order, each a tensors value (labels 0..k-1 within the task)")
    test: float = Field(0.3, gt=0, lt=1, description="share of each task's examples held out for testing "
                                                     "(stratified by class)")
    seed: int = Field(0, description="the train/test splits' seed")


@op("tasks", params=TasksParams, kinds={"data"}, returns="stream", version=1)
def tasks(p: TasksParams, ctx) -> Stream:
    """A stream of labelled tasks, each split into train and test examples.
    Every task must have the same feature shape (a different one is an error at that task); each
    keeps its own labels 0..k-1 (task-incremental heads; `heads = "shared"` offsets them)."""
    from expc.runtime.continual.stream import write_stream

    first = p.tasks[0]
    for i, d in enumerate(p.tasks[1:], 1):
        if list(d.shape) != list(first.shape):
            raise OpError(f"task {i} ({d.source}) has examples of shape {list(d.shape)}, task 0 ({first.source}) "
                          f"{list(first.shape)}: every task of a stream takes one input shape", field=f"tasks.{i}")
    for i, d in enumerate(p.tasks):
        if d.n < 4:
            raise OpError(f"task {i} ({d.source}) has {d.n} examples: too few to split into train and test",
                          field=f"tasks.{i}")
    return write_stream(ctx.out_dir, list(p.tasks), p.test, node_seed(p.seed, ctx.seed))


# ------------------------------------------------------------------------------------------------ methods


class AdapterParams(Params):
    bottleneck: int = Field(8, ge=1, le=65_536, description="the adapter's inner width (LoRA rank on transformers)")
    at: str = Field("hidden", min_length=1, description='the layers it follows: "hidden" (every hidden layer), '
                    '"hidden.1", "conv", "conv.0"; on a transformers backbone the modules whose names end with it '
                    '(e.g. "c_attn")')


@op("adapter", params=AdapterParams, returns="adapter", inline=True)
def adapter(p: AdapterParams, ctx=None) -> AdapterParams:
    """A residual bottleneck adapter after the matching layers (Houlsby et al. 2019: x + up(relu(down(x))),
    starting as the identity); on a transformers backbone a peft LoRA adapter of rank `bottleneck`."""
    return p


class DistillParams(Params):
    steps: int = Field(300, ge=0, description="optimizer steps of the distillation")
    batch: int = Field(32, ge=1, description="examples per step (drawn from the new task's training data)")
    lr: float = Field(1e-3, gt=0, description="Adam's learning rate")
    temperature: float = Field(2.0, gt=0, description="softens teacher and student outputs (the loss is scaled by T^2)")


@op("distill", params=DistillParams, returns="distill", inline=True)
def distill(p: DistillParams, ctx=None) -> DistillParams:
    """How ADA distills two adapters into one pool slot."""
    return p


class MethodParams(Params):
    method: ClassVar[str] = ""

    def describe(self) -> str:
        args = []
        for k, f in type(self).model_fields.items():
            v = getattr(self, k)
            if isinstance(v, Params):
                inner = ", ".join(f"{a}={getattr(v, a)!r}".replace("'", '"') for a in type(v).model_fields)
                args.append(f"{k}={type(v).__name__.removesuffix('Params').lower()}({inner})")
            elif v != f.default:
                args.append(f"{k}={v!r}".replace("'", '"'))
        return f"{self.method}({', '.join(args)})"


class SequentialParams(MethodParams):
    method: ClassVar[str] = "sequential"


@op("sequential", params=SequentialParams, returns="method", inline=True)
def sequential(p: SequentialParams, ctx=None) -> SequentialParams:
    """Fine-tune everything (backbone and the task's head), task after task: the forgetting baseline."""
    return p


class EwcParams(MethodParams):
    method: ClassVar[str] = "ewc"
    strength: float = Field(100.0, ge=0, description="lambda: the weight of the quadratic penalty")
    samples: int = Field(200, ge=1, description="examples of each task whose squared gradients estimate the "
                                                "Fisher diagonal")


@op("ewc", params=EwcParams, returns="method", inline=True)
def ewc(p: EwcParams, ctx=None) -> EwcParams:
    """Elastic weight consolidation (Kirkpatrick et al. 2017): sequential fine-tuning plus
    lambda/2 sum_j sum_i F_j,i (theta_i - theta*_j,i)^2, one term per earlier task j (its empirical Fisher
    diagonal and its weights after training it)."""
    return p


class ReplayParams(MethodParams):
    method: ClassVar[str] = "replay"
    per_task: int = Field(20, ge=1, description="training examples of each task kept in the buffer")


@op("replay", params=ReplayParams, returns="method", inline=True)
def replay(p: ReplayParams, ctx=None) -> ReplayParams:
    """Experience replay: sequential fine-tuning where each step adds the loss on a batch drawn from a
    buffer of `per_task` examples of every earlier task (each through its own head)."""
    return p


def _adapter_value(v):
    if isinstance(v, dict) and v.get("$op") != "adapter":
        raise ValueError(f"expected adapter(bottleneck, at), got {v.get('$op')}(...)")
    return v


class AdaptersParams(MethodParams):
    method: ClassVar[str] = "adapters"
    adapter: Input["adapter"] = Field({"$op": "adapter"}, description="the adapter each task gets")

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, v):
        return _adapter_value(v)


@op("adapters", params=AdaptersParams, returns="method", inline=True)
def adapters(p: AdaptersParams, ctx=None) -> AdaptersParams:
    """One adapter and one head per task on a frozen backbone: no forgetting, memory growing with the
    number of tasks (the upper bound ADA is compared with)."""
    return p


class AdaParams(MethodParams):
    method: ClassVar[str] = "ada"
    pool: int = Field(2, ge=1, le=10_000, description="adapters kept: memory stays constant once the pool is full")
    adapter: Input["adapter"] = Field({"$op": "adapter"}, description="the adapter each task trains")
    score: Literal["leep", "transrate", "random"] = Field(
        "leep", description="how the pool adapter to distill into is chosen: the best LEEP or TransRate of the "
        "new task's data under it, or at random (a baseline)")
    distill: Input["distill"] = Field({"$op": "distill"}, description="distill(steps, batch, lr, temperature)")

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, v):
        return _adapter_value(v)

    @field_validator("distill")
    @classmethod
    def _distill(cls, v):
        if isinstance(v, dict) and v.get("$op") != "distill":
            raise ValueError(f"expected distill(steps, batch, lr, temperature), got {v.get('$op')}(...)")
        return v


@op("ada", params=AdaParams, returns="method", inline=True)
def ada(p: AdaParams, ctx=None) -> AdaParams:
    """Adapters with distillation into a fixed pool (ADA, Ermis et al. 2022): each task trains an adapter
    and a head on the frozen backbone; the adapter joins the pool while it has room, afterwards the pool
    adapter scoring best on the new task's data (`score`) and the new adapter are distilled into that
    slot, which then serves the new task and the tasks it served before."""
    return p


METHODS = ("sequential", "ewc", "replay", "adapters", "ada")

# -------------------------------------------------------------------------------------------------- run


class ContinualParams(Params):
    stream: Input["stream"] = Field(description="the tasks, in order: tasks(...)")
    model: Input["model"] = Field(description="the backbone: a classifier (fit) or a transformers model")
    method: Input["method"] = Field(description="sequential(), ewc(...), replay(...), adapters(...) or ada(...)")
    optimizer: Input["optimizer"] = Field({"$op": "adam", "lr": 1e-3},
                                          description="trains each task: sgd(...), adam(...)")
    epochs: int = Field(10, ge=1, description="passes over each task's training examples")
    batch: int = Field(32, ge=1, description="examples per step")
    seed: int = Field(0, description="heads' and adapters' initialization, batch order, replay and random choices")
    heads: Literal["task", "shared"] = Field(
        "task", description='"task": a head per task, picked by the task identity at test time (task-incremental); '
        '"shared": no task identity, the largest logit over every head seen so far (class-incremental)')

    @field_validator("method")
    @classmethod
    def _method(cls, v):
        if isinstance(v, dict) and v.get("$op") not in METHODS:
            raise ValueError(f"expected a method ({', '.join(m + '(...)' for m in METHODS)}), got {v.get('$op')}(...)")
        return v

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v):
        from expc.runtime.ops.optim import check_optimizer

        return check_optimizer(v)


def _precheck_continual(args: dict) -> list[OpError]:
    """At check time: an adapter's `at` against a backbone `fit` builds from an architecture written in
    the file (mlp's hidden layers, cnn's conv blocks)."""
    method, model = args.get("method"), args.get("model")
    if not (isinstance(method, dict) and isinstance(model, Producer) and model.op == "fit"):
        return []
    spec = method.get("adapter", {"$op": "adapter"}) if method.get("$op") in ("adapters", "ada") else None
    at = spec.get("at", "hidden") if isinstance(spec, dict) else None
    arch = model.args.get("model")
    if not isinstance(at, str) or not isinstance(arch, dict) or arch.get("$op") not in ("mlp", "cnn"):
        return []
    hidden = arch.get("hidden", [64])
    channels = arch.get("channels", [16, 32]) if arch["$op"] == "cnn" else []
    if not isinstance(hidden, list) or not isinstance(channels, list):
        return []
    from expc.runtime.continual.layers import no_layer

    problem = no_layer(at, [f"conv.{i}" for i in range(len(channels))] + [f"hidden.{i}" for i in range(len(hidden))])
    return [OpError(problem, field="method.adapter.at")] if problem else []


@op("continual", params=ContinualParams, kinds={"continual"}, returns="continual", version=1,
    precheck=_precheck_continual)
def continual(p: ContinualParams, ctx) -> dict:
    """Train a method on a stream, task after task, and measure the accuracy matrix R[i][j] (accuracy on
    task j after training task i). Each task gets its own head; adapter methods keep the backbone
    frozen. Checkpoints after every task into the node's work dir: a killed run continues from its last
    finished task. Returns the matrix, avg_accuracy, forgetting, bwt, n_params (backbone + adapters +
    heads), inference_cost (backbone passes per test input), seconds, and ADA's choices (slot and scores
    per task); `expc show` prints the matrix."""
    from expc.runtime.continual.run import run_continual

    return run_continual(p, ctx)


# ---------------------------------------------------------------------------------------------- results


class RunParams(Params):
    run: Input["continual"] = Field(description="a continual run")


def _matrix(p: RunParams):
    return p.run["matrix"]


@op("avg_accuracy", params=RunParams, kinds={"eval"}, returns="metric", version=1)
def avg_accuracy(p: RunParams, ctx=None) -> dict:
    """The mean of the accuracy matrix's last row: accuracy on every task after the last (value);
    `pooled` weighs the tasks by their test examples (Avalanche's StreamAccuracy)."""
    from expc.runtime.continual.metrics import avg_accuracy as measure

    return measure(_matrix(p), None) | {"pooled": p.run.get("pooled_accuracy")}


@op("forgetting", params=RunParams, kinds={"eval"}, returns="metric", version=1)
def forgetting(p: RunParams, ctx=None) -> dict:
    """Mean over every task but the last of its accuracy right after training it minus its accuracy at
    the end (Avalanche's StreamForgetting; value); `per_task`, and `max_based` (Chaudhry et al. 2018: the
    best earlier accuracy minus the last)."""
    from expc.runtime.continual.metrics import forgetting as measure

    return measure(_matrix(p))


@op("bwt", params=RunParams, kinds={"eval"}, returns="metric", version=1)
def bwt(p: RunParams, ctx=None) -> dict:
    """Backward transfer (Lopez-Paz & Ranzato 2017): mean over every task but the last of its final
    accuracy minus its accuracy right after training it (value; negative: forgetting); `per_task`."""
    from expc.runtime.continual.metrics import bwt as measure

    return measure(_matrix(p))


@op("inference_cost", params=RunParams, kinds={"eval"}, returns="metric", version=1)
def inference_cost(p: RunParams, ctx=None) -> dict:
    """Forward passes of the backbone per test input (value): 1 when the task identity picks the adapter;
    with heads = "shared", one per adapter kept (adapters: the tasks; ada: at most the pool)."""
    return {"value": p.run["inference_cost"], "heads": p.run["heads"],
            "adapters": p.run["n_params"].get("n_adapters", 0)}


@op("wall_time", params=RunParams, kinds={"eval"}, returns="metric", version=1)
def wall_time(p: RunParams, ctx=None) -> dict:
    """Seconds the run spent training and evaluating, over every session it took (value)."""
    return {"value": p.run["seconds"]}


class MatrixParams(Params):
    run: Input["continual"] = Field(description="the continual run whose accuracy matrix to draw")


@op("matrix", params=MatrixParams, returns="plot", inline=True)
def matrix(p: MatrixParams, ctx=None) -> None:
    """The accuracy matrix of a continual run as a heat map (row: after training task i; column: task j)."""
