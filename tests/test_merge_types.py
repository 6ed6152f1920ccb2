"""The type of a merge: a merge of classifiers is a `classifier` (so it can be trained on, attacked and
merged again), of a classifier and another model a `model`. Tensorwise merge operators declare it with a
join template (`returns="{a|b}"`), arithmetic keeps its operands' type. Check time only."""

from __future__ import annotations

import pytest
from conftest import write

from expc.interpreter.compiler import compile
from expc.runtime.registry import load_registry
from expc.spec.diagnostics import CompileError

HEAD = """\
data d = split(digits(normalize = true), test = 0.2, seed = 0)
train clf = fit(mlp(hidden = [8]), d.train, steps = 5)
train clf2 = fit(mlp(hidden = [8]), d.train, steps = 5, seed = 1)
"""


@pytest.mark.parametrize("expr", [
    'where("head.*", 1e4 * clf, clf)',
    "0.5 * clf + 0.5 * clf2",
    "ties(clf, [clf2, clf2])",
    "dare(clf, [clf2], seed = 1)",
    "slerp(clf, clf2, t = 0.3)",
    'cast(clf, dtype = "bfloat16")',
    'where("hidden.*", slerp(clf, clf2), 2 * clf)',
])
def test_a_merge_of_classifiers_is_a_classifier(tmp_path, expr):
    f = write(tmp_path / "m.exp", HEAD + f"merge m = {expr}\n"
              "train more = fit(m, d.train, steps = 5)\n"  # fit continues classifiers only
              "eval asr = attack_success(m, d.test, attack = pgd(eps = 0.1), n = 10)\n")
    p = compile(f).program
    assert p.nodes["m"].type == "classifier" and p.nodes["m"].op == "algebra"
    assert p.nodes["more"].args["model"].node == "m"


def test_a_merge_inside_a_call_is_typed_too(tmp_path):
    f = write(tmp_path / "m.exp", HEAD + 'train more = fit(where("head.*", 1e4 * clf, clf), d.train, steps = 5)\n')
    nodes = compile(f).program.nodes
    (merge,) = [n for n in nodes.values() if n.op == "algebra"]
    assert merge.type == "classifier"


def test_a_classifier_merged_with_another_model_is_a_model(tmp_path):
    from _merge_models import save_tiny

    save_tiny(tmp_path / "lm")
    f = write(tmp_path / "m.exp", HEAD + 'model lm = pretrained("lm")\n'
              'merge m = where("head.*", clf, lm)\n'
              "train more = fit(m, d.train, steps = 5)\n")
    with pytest.raises(CompileError) as e:
        compile(f)
    (d,) = e.value.diagnostics
    assert d.code == "E301" and d.message == ("argument 'model' of fit() expects classifier, net, recurrent or rnn_lm, "
                                              "got model")


def test_join_is_the_nearest_common_type():
    types = load_registry().types
    assert types.join(["classifier", "classifier"]) == "classifier"
    assert types.join(["classifier", "model"]) == "model" == types.join(["model", "classifier"])
    assert types.join(["classifier", "tensors"]) == "any"
    assert types.join(["int", "number"]) == "number"
    assert types.join(["classifier", "any"]) == "any"
    assert types.fill_returns("{a|b}", {"a": "classifier", "b": "classifier"}.get) == "classifier"
    assert types.fill_returns("split[{data}]", {"data": "tensors"}.get) == "split[tensors]"
    assert types.fill_returns("{a|b}", {"a": "classifier"}.get) == "any"  # b unknown
