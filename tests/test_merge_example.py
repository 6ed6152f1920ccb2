"""examples/merge.exp end to end through `expc run`, and a pre-load diagnostic at its source span."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from _merge_models import max_err, save_tiny, state_dict

from expc.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_example_runs_and_saves_a_loadable_model(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shutil.copytree(EXAMPLES / "models", tmp_path / "models")
    shutil.copy(EXAMPLES / "merge.exp", tmp_path)
    out = tmp_path / "dem"
    rc = main(["run", str(tmp_path / "merge.exp"), "--cache", str(tmp_path / ".expc"), "--save", f"dem={out}"])
    assert rc == 0, capsys.readouterr()
    b, m1, m2 = (state_dict(tmp_path / "models" / n) for n in ("base", "m1", "m2"))
    ref = {k: b[k] + 0.5 * (m1[k] - b[k]) + 0.3 * (m2[k] - b[k]) for k in b}
    assert max_err(state_dict(out), ref) < 1e-6
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = AutoTokenizer.from_pretrained(out)("w1 w2 w3", return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(ids).logits).all()

    # a searched/overridden weight changes only the node that uses it
    rc = main(["run", str(tmp_path / "merge.exp"), "--cache", str(tmp_path / ".expc"), "w1=0.4",
               "--save", f"dem={out}2"])  # fmt: skip
    assert rc == 0
    ref = {k: b[k] + 0.4 * (m1[k] - b[k]) + 0.3 * (m2[k] - b[k]) for k in b}
    assert max_err(state_dict(Path(f"{out}2")), ref) < 1e-6


def test_vocabulary_mismatch_points_at_the_operand(tmp_path, capsys):
    shutil.copytree(EXAMPLES / "models" / "base", tmp_path / "base")
    save_tiny(tmp_path / "other", seed=3, vocab=80, positions=32, tokenizer=False)
    (tmp_path / "bad.exp").write_text(
        'experiment bad { seed = 0 }\nmodel base = pretrained("base")\nmodel other = pretrained("other")\n'
        "merge dem = base + 0.5*(other - base)\n"
    )
    rc = main(["run", str(tmp_path / "bad.exp"), "--cache", str(tmp_path / ".expc")])
    err = capsys.readouterr()
    text = err.out + err.err
    assert rc != 0
    assert "bad.exp:4:25: error[E600]: dem: vocabulary sizes differ: this model has 80 tokens, the first model 64" in text
    assert "merge dem = base + 0.5*(other - base)\n    |                         ^^^^^" in text
