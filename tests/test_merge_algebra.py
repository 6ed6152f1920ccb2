"""The merge algebra: constant folding, linear merges vs a direct PyTorch reference, output format."""

from __future__ import annotations

import json

import pytest
import torch
from _merge_models import (DEM, M0, M1, M2, add, call, div, max_err, mul,
                           save_tiny, sharded_trio, state_dict, stored_dtypes, sub)
from _opctx import OpContext

from expc.runtime.api import OpError
from expc.runtime.merge.engine import run_algebra
from expc.runtime.merge import expr
from expc.runtime.merge.expr import KernelCall, OperandRef, Lin, describe, output_cast, specialize
from expc.runtime.ops.merge import algebra
from expc.runtime.registry import load_registry


def parse(tree, n_models):
    """The expression's IR, its calls looked up in the shipped operators."""
    return expr.parse(tree, n_models, load_registry().get)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return sharded_trio(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    root = tmp_path_factory.mktemp("llama")
    return [save_tiny(root / f"m{i}", kind="llama", seed=10 + i) for i in range(3)]


def test_linear_parts_fold_to_one_coefficient_per_model():
    lin = parse(DEM, 3)
    coefs = {a.index: k for a, k in lin.terms}
    assert set(coefs) == {0, 1, 2}
    assert coefs[0] == pytest.approx(0.2) and coefs[1] == 0.5 and coefs[2] == 0.3
    assert lin.const == 0.0
    assert describe(lin, ["base", "m1", "m2"]) == "0.2*base + 0.5*m1 + 0.3*m2"


def test_folding_drops_operands_that_cancel():
    # 1 - 0.7 - 0.3 is 5.6e-17 in floats: base must not be read at all
    lin = parse(add(add(M0, mul(0.7, sub(M1, M0))), mul(0.3, sub(M2, M0))), 3)
    assert lin.leaves() == {1, 2}
    assert parse(div(add(M1, M2), 2), 3) == Lin(((OperandRef(1), 0.5), (OperandRef(2), 0.5)))
    assert parse({"op": "neg", "args": [sub(M0, M1)]}, 3) == Lin(((OperandRef(0), -1.0), (OperandRef(1), 1.0)))


def test_where_is_resolved_per_tensor_name_and_refolded():
    lin = parse(add(mul(0.5, call("where", pattern="*.mlp.*", a=M1, b=M0)), mul(0.5, M0)), 2)
    assert specialize(lin, "transformer.h.0.mlp.c_fc.weight") == Lin(((OperandRef(1), 0.5), (OperandRef(0), 0.5)))
    assert specialize(lin, "transformer.wte.weight") == Lin(((OperandRef(0), 1.0),))


def test_outer_cast_sets_the_output_dtype():
    body, dtype = output_cast(parse(call("cast", model=DEM, dtype="bfloat16"), 3))
    assert dtype == "bfloat16" and body == parse(DEM, 3)
    nested = parse(add(call("cast", model=M0, dtype="float16"), M1), 2)
    assert output_cast(nested)[1] is None and isinstance(nested.terms[0][0], KernelCall)


@pytest.mark.parametrize(
    "tree, message",
    [
        (5.0, "has no model"),
        ({"op": "pow", "args": [M0, 2]}, "unknown merge operator 'pow'"),
        ({"model": 3}, "out of range"),
        (div(M0, sub(M1, M1)), "division by zero"),
        (call("tie", base=M0, models=[M1]), "'tie' is not a tensorwise merge operator"),
        (call("ties", base=M0, models=[M1], weights=[1, 2]), "weights has 2 entries but there are 1 models"),
        (call("ties", base=M0, models=[M1], density=1.5), "density"),
        (call("slerp", a=M0, b=2.0), "b must be a model"),
    ],
)
def test_malformed_expressions_are_errors_on_expr(tree, message):
    with pytest.raises(OpError, match=message) as e:
        parse(tree, 2 if tree != {"model": 3} else 3)
    assert e.value.field == "expr"


def test_linear_merge_matches_reference_on_sharded_inputs(gpt2, tmp_path):
    ctx = OpContext(tmp_path)
    out = algebra.fn(algebra.params(models=gpt2, expr=DEM), ctx)
    b, m1, m2 = (state_dict(p) for p in gpt2)
    ref = {k: b[k] + 0.5 * (m1[k] - b[k]) + 0.3 * (m2[k] - b[k]) for k in b}
    assert max_err(state_dict(out.path), ref) < 1e-6
    assert out.architecture == "GPT2LMHeadModel" and out.dtype == "float32"
    assert out.n_params == sum(v.numel() for v in b.values())
    assert ctx.warnings == []
    assert json.loads((out.path / "merge.json").read_text())["expression"] == (
        "0.2*models[0] + 0.5*models[1] + 0.3*models[2]"
    )


def test_chunked_evaluation_matches_whole_tensors(gpt2, tmp_path):
    # chunks much smaller than tensors (and not dividing them) must give the same bytes
    a = run_algebra(gpt2, DEM, OpContext(tmp_path / "a"), chunk_elems=1000)
    b = run_algebra(gpt2, DEM, OpContext(tmp_path / "b"))
    sa, sb = state_dict(a.path), state_dict(b.path)
    assert all(torch.equal(sa[k], sb[k]) for k in sb)


def test_products_quotients_and_constants(gpt2, tmp_path):
    tree = add(div(mul(M1, M2), add(M0, 3.0)), -0.25)
    out = run_algebra(gpt2, tree, OpContext(tmp_path))
    b, m1, m2 = (state_dict(p) for p in gpt2)
    ref = {k: m1[k] * m2[k] / (b[k] + 3.0) - 0.25 for k in b}
    assert max_err(state_dict(out.path), ref) < 1e-6


def test_bf16_output_loads_and_runs(llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tree = call("cast", model=add(mul(0.6, M0), mul(0.4, M1)), dtype="bfloat16")
    out = run_algebra(llama, tree, OpContext(tmp_path), max_shard_bytes=40_000)
    assert stored_dtypes(out.path) == {"BF16"}
    assert (out.path / "model.safetensors.index.json").is_file()
    assert json.loads((out.path / "config.json").read_text())["dtype"] == "bfloat16"
    assert (out.path / "tokenizer.json").is_file() and (out.path / "tokenizer_config.json").is_file()
    a, b = state_dict(llama[0]), state_dict(llama[1])
    merged = state_dict(out.path)
    for k in a:
        ref = (0.6 * a[k] + 0.4 * b[k]).bfloat16().float()
        torch.testing.assert_close(merged[k].float(), ref, rtol=2**-7, atol=0)

    model = AutoModelForCausalLM.from_pretrained(out.path, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(out.path)
    ids = tok("w1 w2 w3", return_tensors="pt")["input_ids"]
    logits = model(ids).logits
    assert logits.shape == (1, 3, 96) and torch.isfinite(logits).all()


def test_merged_gpt2_loads_with_from_pretrained(gpt2, tmp_path):
    from transformers import AutoModelForCausalLM

    out = algebra.fn(algebra.params(models=gpt2, expr=DEM), OpContext(tmp_path))
    model = AutoModelForCausalLM.from_pretrained(out.path)
    ref = state_dict(out.path)
    loaded = model.state_dict()
    assert torch.equal(loaded["transformer.h.1.mlp.c_fc.weight"], ref["transformer.h.1.mlp.c_fc.weight"])
    assert torch.isfinite(model(torch.tensor([[3, 4, 5]])).logits).all()


def test_sum_of_models_is_warned(gpt2, tmp_path):
    ctx = OpContext(tmp_path)
    run_algebra(gpt2[:2], add(M0, M1), ctx)
    assert any("sum to 2" in m and f == "expr" for m, f in ctx.warnings)
