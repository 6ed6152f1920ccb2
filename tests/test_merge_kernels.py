"""Tensorwise merge operators declared outside expc, with their kernels in this module, are checked,
planned and run through the merge algebra against a registry that has them: the algebra finds its
operators and their kernels through the program's registry (ctx.operator), never a table of its own."""

from __future__ import annotations

import sys

import pytest
import torch
from _merge_models import max_err, save_tiny, state_dict
from pydantic import Field

from expc.interpreter.compiler import compile
from expc.interpreter.session import Session
from expc.runtime.merge import kernels
from expc.runtime.registry import Input, Params, builtin_modules, collect, op
from expc.spec.diagnostics import CompileError


def lerp_kernel(p, tensor: str) -> torch.Tensor:
    return torch.lerp(p.a, p.b, p.t)


class LerpParams(Params):
    a: Input["model"] = Field(description="the model at t = 0")
    b: Input["model"] = Field(description="the model at t = 1")
    t: float = Field(0.5, ge=0.0, le=1.0, description="interpolation position")


@op("lerp", params=LerpParams, kinds={"merge"}, returns="model", tensorwise=True, kernel=lerp_kernel)
def lerp(p: LerpParams, ctx):
    """Linear interpolation a + t*(b - a), per tensor."""
    raise AssertionError("a tensorwise call is fused into its algebra node, never run on its own")


def mean_kernel(p, tensor: str) -> torch.Tensor:
    return torch.stack(p.models).mean(0)


class MeanParams(Params):
    models: list[Input["model"]] = Field(min_length=1, description="the models to average")


# declared by name: imported when a merge runs, as the shipped kernels are (no torch at declaration)
@op("average", params=MeanParams, kinds={"merge"}, returns="model", tensorwise=True, kernel=f"{__name__}:mean_kernel")
def average(p: MeanParams, ctx):
    """The mean of the models, per tensor."""
    raise AssertionError("a tensorwise call is fused into its algebra node, never run on its own")


PROGRAM = """experiment kernels { seed = 0 }
model base = pretrained("base")
model m1 = pretrained("m1")
model m2 = pretrained("m2")
merge quarter = lerp(m1, m2, t = 0.25)
merge mixed = base + 0.5 * (average([m1, m2]) - base)
merge nested = where("*.mlp.*", lerp(base, ties(base, [m1, m2], density = 0.5), t = 1.0), average([base, m2]))
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("kernels")
    for i, name in enumerate(("base", "m1", "m2")):
        save_tiny(root / name, seed=i, tokenizer=False)
    (root / "kernels.exp").write_text(PROGRAM)
    return root


def test_a_registry_with_new_kernels_checks_plans_and_runs_them(models, tmp_path):
    registry = collect([*builtin_modules(), sys.modules[__name__]])
    session = Session.open(models / "kernels.exp", cache=tmp_path / ".expc", registry=registry)
    assert {session.program.nodes[n].op for n in ("quarter", "mixed", "nested")} == {"algebra"}
    result = session.run()
    assert result.status == "ok", result.failure

    b, m1, m2 = (state_dict(models / n) for n in ("base", "m1", "m2"))
    assert max_err(state_dict(result.results["quarter"].path), {k: m1[k] + 0.25 * (m2[k] - m1[k]) for k in b}) < 1e-6
    assert max_err(state_dict(result.results["mixed"].path), {k: 0.25 * (m1[k] + m2[k]) + 0.5 * b[k] for k in b}) < 1e-6

    # where() still picks whole tensors by name around the new kernels; TIES is tested on its own elsewhere
    nested = state_dict(result.results["nested"].path)
    ref = {k: kernels.ties(b[k], [m1[k], m2[k]], [1.0, 1.0], 0.5) if ".mlp." in k else 0.5 * (b[k] + m2[k])
           for k in b}  # fmt: skip
    assert max_err(nested, ref) < 1e-5


def test_the_shipped_registry_does_not_know_them(models):
    with pytest.raises(CompileError) as e:
        compile(models / "kernels.exp")
    assert any("'lerp'" in d.message for d in e.value.diagnostics)


def test_a_kernel_is_declared_exactly_for_a_tensorwise_operator():
    with pytest.raises(TypeError, match="kernel"):
        op("bad", params=LerpParams, kinds={"merge"}, returns="model", tensorwise=True)
    with pytest.raises(TypeError, match="kernel"):
        op("bad", params=LerpParams, kinds={"merge"}, returns="model", kernel=lerp_kernel)
    with pytest.raises(TypeError, match="module:function"):
        op("bad", params=LerpParams, kinds={"merge"}, returns="model", tensorwise=True, kernel="no_colon")
