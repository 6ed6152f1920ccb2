"""loss / perplexity: agree with a direct token-by-token computation; HF tokenizers end to end."""

from __future__ import annotations

import math

import pytest
import torch
from _opctx import OpContext, run

from expc.runtime.api import OpError
from expc.runtime.data.values import TextData
from expc.runtime.ops import data as D
from expc.runtime.ops import evaluate as E
from expc.runtime.ops import models as M
from expc.runtime.ops import train as T


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev")
    return run(M.gpt2, OpContext(root / "m"), layers=2, width=32, heads=4, context=16, seed=5)


def _direct_loss(model_dir, text_bytes: bytes, context: int) -> float:
    """Independent reference: each position t >= 1 is predicted from the tokens of its tile
    [k*context, t), one window at a time, with log_softmax and gather."""
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(str(model_dir.path)).eval()
    ids = list(text_bytes)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, context):
            window = ids[start : start + context + 1]
            inp = torch.tensor([window[:-1]])
            logp = torch.log_softmax(lm(input_ids=inp).logits[0].double(), -1)
            total -= sum(float(logp[i, window[i + 1]]) for i in range(len(window) - 1))
    return total / (len(ids) - 1)


def test_loss_matches_direct_computation(model, tmp_path):
    examples = ["hello world", "12+34=46", "ünïcødé ✓", "a much longer line that spans more than one window"]
    data = TextData.write(tmp_path / "d", examples, "t")
    stream = ("\n".join(examples) + "\n").encode()
    assert (len(stream) - 1) % 16 != 0  # exercises the short last window
    got = run(E.loss, OpContext(tmp_path / "e"), model=model, data=data, batch=3)
    ref = _direct_loss(model, stream, 16)
    assert got["value"] == pytest.approx(ref, rel=1e-5)
    assert got["tokens"] == len(stream) - 1 and got["nats_per_byte"] == got["value"]
    assert got["bits_per_byte"] == pytest.approx(ref / math.log(2), rel=1e-5)
    ppl = run(E.perplexity, OpContext(tmp_path / "p"), model=model, data=data)
    assert ppl["value"] == pytest.approx(math.exp(ref), rel=1e-5) and ppl["nats_per_token"] == pytest.approx(ref)


def test_shorter_context_and_batch_invariance(model, tmp_path):
    data = run(D.arithmetic, OpContext(tmp_path / "a"), n=60)
    stream = ("\n".join(data.examples()) + "\n").encode()
    a = run(E.loss, OpContext(tmp_path / "e1"), model=model, data=data, context=8, batch=1)["value"]
    b = run(E.loss, OpContext(tmp_path / "e2"), model=model, data=data, context=8, batch=100)["value"]
    assert a == pytest.approx(b, rel=1e-6)
    assert a == pytest.approx(_direct_loss(model, stream, 8), rel=1e-5)
    again = run(E.loss, OpContext(tmp_path / "e3"), model=model, data=data, context=8, batch=100)["value"]
    assert again == b  # deterministic


def test_eval_errors(model, tmp_path):
    data = TextData.write(tmp_path / "d", ["abc"], "t")
    with pytest.raises(OpError) as e:
        run(E.loss, OpContext(tmp_path / "e"), model=model, data=data, context=32)
    assert e.value.field == "context"
    empty = TextData.write(tmp_path / "d2", [], "empty")
    with pytest.raises(OpError, match="fewer than context"):
        run(E.perplexity, OpContext(tmp_path / "e2"), model=model, data=empty)


def _hf_tokenizer(path, corpus):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=80, special_tokens=["<unk>", "<eos>"])
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    fast.save_pretrained(str(path))
    return fast


def test_hf_tokenizer_model_trains_and_evaluates(tmp_path):
    data = run(D.arithmetic, OpContext(tmp_path / "a"), n=400, digits=2)
    fast = _hf_tokenizer(tmp_path / "tok", data.examples())
    m = run(M.gpt2, OpContext(tmp_path / "m"), layers=1, width=16, heads=2, context=16, tokenizer=str(tmp_path / "tok"))
    import json

    cfg = json.loads((m.path / "config.json").read_text())
    assert cfg["vocab_size"] == len(fast)
    assert json.loads((m.path / "expc_tokenizer.json").read_text()) == {"kind": "hf"}
    assert (m.path / "tokenizer.json").exists()
    before = run(E.loss, OpContext(tmp_path / "e0"), model=m, data=data)
    tuned = run(T.finetune, OpContext(tmp_path / "f"), model=m, data=data, steps=40, lr=1e-2, batch=8)
    after = run(E.loss, OpContext(tmp_path / "e1"), model=tuned, data=data)
    assert (tuned.path / "tokenizer.json").exists()
    ids = fast(data.examples(), add_special_tokens=False)["input_ids"]
    assert after["tokens"] == sum(len(x) + 1 for x in ids) - 1  # one <eos> after each example
    assert after["value"] < before["value"] - 0.5
    assert after["bytes"] == data.n_bytes + data.n and after["nats_per_byte"] < after["nats_per_token"]


def test_tokenizer_directory_is_resolved_checked_and_keyed_by_content(tmp_path):
    from expc.interpreter.compiler import compile
    from expc.interpreter.planner import Planner
    from expc.runtime.registry import load_registry
    from expc.spec.diagnostics import CompileError

    data = run(D.arithmetic, OpContext(tmp_path / "a"), n=50, digits=2)
    _hf_tokenizer(tmp_path / "tok", data.examples())
    f = tmp_path / "t.exp"
    f.write_text('model m = gpt2(layers = 1, width = 16, heads = 2, context = 16, tokenizer = "tok")\n'
                 'model b = gpt2(layers = 1, width = 16, heads = 2, context = 16)\n')
    program = compile(f).program
    assert program.nodes["m"].args["tokenizer"] == {"$file": str(tmp_path / "tok"), "kind": "dir"}
    assert program.nodes["b"].args.get("tokenizer", "bytes") == "bytes"
    key = Planner(program, load_registry()).plan("m").key
    (tmp_path / "tok" / "tokenizer.json").write_text((tmp_path / "tok" / "tokenizer.json").read_text() + " ")
    assert Planner(compile(f).program, load_registry()).plan("m").key != key
    f.write_text('model m = gpt2(layers = 1, width = 16, heads = 2, context = 16, tokenizer = "nope")\n')
    with pytest.raises(CompileError) as e:
        compile(f)
    assert e.value.diagnostics[0].code == "E501" and "directory not found: 'nope'" in e.value.diagnostics[0].message
