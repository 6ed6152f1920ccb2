"""Model merging: `pretrained(dir)`, the merge algebra (`base + w*(m - base)`) and its tensorwise
functions `ties`, `dare`, `slerp`, `where`, `cast`.

The checker lowers a model-typed expression, with the tensorwise calls nested in it, into ONE `algebra`
node; expc.runtime.merge compiles it to a per-tensor function and streams it over the safetensors
shards. Declarations only: torch is imported when an operator runs. The prechecks of `pretrained` and
`algebra` let `expc check` read the directories' headers (no torch) and report what the run would.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from expc.runtime.api import OpError, Producer
from expc.runtime.registry import DirPath, Input, Params, op

# ------------------------------------------------------------------------------------------ pretrained


class PretrainedParams(Params):
    path: DirPath = Field(description="a Hugging Face model directory: config.json + *.safetensors")


def _precheck_pretrained(args: dict) -> list[OpError]:
    """At check time, the directory's config.json and safetensors headers, as pretrained() reads them."""
    from pathlib import Path

    from expc.runtime.merge.modeldir import load_operand

    path = args.get("path")
    if not isinstance(path, str) or not Path(path).is_dir():
        return []  # not a constant, or missing: the checker reports a missing path itself
    try:
        load_operand(Path(path).resolve(), "path")
    except OpError as e:
        return [e]
    return []


@op("pretrained", params=PretrainedParams, kinds={"model"}, returns="model", version=1,
    precheck=_precheck_pretrained)
def pretrained(p: PretrainedParams, ctx):
    """A local Hugging Face model directory (safetensors weights only; pickled .bin/.pt are refused)."""
    from pathlib import Path

    from expc.runtime.merge.modeldir import link_pretrained, main_dtype
    from expc.runtime.values import ModelDir

    operand = link_pretrained(Path(p.path), Path(ctx.out_dir), field="path", warn=ctx.warn)
    return ModelDir(
        path=ctx.out_dir,
        architecture=operand.architecture,
        dtype=main_dtype(operand.tensors),
        n_params=sum(t.numel for t in operand.tensors),
    )


# ---------------------------------------------------------------------------------------------- algebra


class AlgebraParams(Params):
    models: list[Input["model"]] = Field(description="the distinct model operands of the expression")
    expr: dict = Field(description="the expression tree over the operands (see runtime/merge/FORMULAS.md)")


def _precheck_algebra(args: dict) -> list[OpError]:
    """At check time, the operands that are pretrained() directories are compared as run_algebra
    compares them (architecture, tensor names, shapes, vocabulary), from their headers."""
    from pathlib import Path

    models = args.get("models")
    if not isinstance(models, list):
        return []
    dirs = [
        Path(m.args["path"]).resolve()
        if isinstance(m, Producer) and m.op == pretrained.name and isinstance(m.args.get("path"), str)
        else None
        for m in models
    ]
    if dirs[:1] == [None]:  # nothing to compare against (every message is relative to the first operand)
        return []
    from expc.runtime.merge.modeldir import check_known

    err = check_known(dirs, [f"models.{i}" for i in range(len(models))])
    return [err] if err is not None else []


@op("algebra", params=AlgebraParams, kinds={"merge", "model"}, returns="model", version=1,
    precheck=_precheck_algebra)
def algebra(p: AlgebraParams, ctx):
    """A model-valued expression over models, compiled to one per-tensor function and streamed."""
    from expc.runtime.merge.engine import run_algebra

    return run_algebra(list(p.models), p.expr, ctx)


# ------------------------------------------------------------------------------- tensorwise functions


def _as_algebra(p: Params, name: str, ctx):
    """Run a tensorwise call on its own (not lowered into an algebra node) through the same compiler."""
    from expc.runtime.merge.engine import run_algebra

    models: list[Any] = []
    fields: list[str] = []
    args: dict[str, Any] = {}
    op_ = ctx.operator(name)
    for f in op_.fields:
        v = getattr(p, f.name)
        if f.input_types is None:
            args[f.name] = v
        elif f.is_list:
            args[f.name] = []
            for j, m in enumerate(v):
                args[f.name].append({"model": len(models)})
                models.append(m)
                fields.append(f"{f.name}.{j}")
        else:
            args[f.name] = {"model": len(models)}
            models.append(v)
            fields.append(f.name)
    return run_algebra(models, {"op": "call", "name": name, "args": args}, ctx, fields=fields)


def _check_weights(weights: list[float] | None, models: Any) -> None:
    if weights is not None and isinstance(models, list) and len(weights) != len(models):
        raise ValueError(f"weights has {len(weights)} entries but there are {len(models)} models")


class TiesParams(Params):
    base: Input["model"] = Field(description="the common base model")
    models: list[Input["model"]] = Field(description="the fine-tuned models")
    weights: list[float] | None = Field(None, description="one weight per model (default 1 each)")
    density: float = Field(0.5, ge=0.0, le=1.0, description="fraction of each task vector kept (by magnitude)")
    normalize: bool = Field(True, description="divide by the summed weights of the agreeing models")

    @model_validator(mode="after")
    def _weights_match(self):
        _check_weights(self.weights, self.models)
        return self


@op("ties", params=TiesParams, kinds={"merge"}, returns="{base|models}", version=1, tensorwise=True,
    kernel="expc.runtime.merge.kernels:ties_kernel")
def ties(p: TiesParams, ctx):
    """TIES-Merging: trim task vectors to the top density by magnitude, elect signs, disjoint mean."""
    return _as_algebra(p, "ties", ctx)


class DareParams(Params):
    base: Input["model"] = Field(description="the common base model")
    models: list[Input["model"]] = Field(description="the fine-tuned models")
    weights: list[float] | None = Field(None, description="one weight per model (default 1 each)")
    density: float = Field(0.5, ge=0.0, le=1.0, description="probability of keeping a task-vector entry")
    rescale: bool = Field(True, description="divide the kept entries by density")
    seed: int = Field(0, ge=0, description="seed of the drop masks (drawn per tensor and model)")

    @model_validator(mode="after")
    def _weights_match(self):
        _check_weights(self.weights, self.models)
        return self


@op("dare", params=DareParams, kinds={"merge"}, returns="{base|models}", version=1, tensorwise=True,
    kernel="expc.runtime.merge.kernels:dare_kernel")
def dare(p: DareParams, ctx):
    """DARE: drop task-vector entries at random (keep with probability density), rescale, add."""
    return _as_algebra(p, "dare", ctx)


class SlerpParams(Params):
    a: Input["model"] = Field(description="the model at t = 0")
    b: Input["model"] = Field(description="the model at t = 1")
    t: float = Field(0.5, ge=0.0, le=1.0, description="interpolation position")


@op("slerp", params=SlerpParams, kinds={"merge"}, returns="{a|b}", version=1, tensorwise=True,
    kernel="expc.runtime.merge.kernels:slerp_kernel")
def slerp(p: SlerpParams, ctx):
    """Spherical linear interpolation per tensor (linear when the tensors are nearly colinear)."""
    return _as_algebra(p, "slerp", ctx)


class WhereParams(Params):
    pattern: str = Field(description='a glob on tensor names, e.g. "*.mlp.*" or "model.layers.1[0-5].*"')
    a: Input["model"] = Field(description="where the matching tensors come from")
    b: Input["model"] = Field(description="where the other tensors come from")


@op("where", params=WhereParams, kinds={"merge"}, returns="{a|b}", version=1, tensorwise=True,
    kernel="expc.runtime.merge.kernels:where_kernel")
def where(p: WhereParams, ctx):
    """Tensors whose name matches the glob come from `a`, the others from `b`."""
    return _as_algebra(p, "where", ctx)


class CastParams(Params):
    model: Input["model"] = Field(description="the model (expression) to cast")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(description="the dtype to store")


@op("cast", params=CastParams, kinds={"merge"}, returns="{model}", version=1, tensorwise=True,
    kernel="expc.runtime.merge.kernels:cast_kernel")
def cast(p: CastParams, ctx):
    """The output dtype of a merge (outermost), or a rounding to that dtype (nested)."""
    return _as_algebra(p, "cast", ctx)
