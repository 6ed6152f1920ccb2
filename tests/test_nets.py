"""Architectures (`mlp`, `cnn`): defaults by use, torch modules, model directories with `head.*`, and the
check-time diagnostics of bad architectures and of data of the wrong modality."""

from __future__ import annotations

import json

import pytest
import torch
from _opctx import OpContext
from conftest import compile_errors
from safetensors.torch import load_file

from expc.interpreter.compiler import compile
from expc.runtime.api import OpError
from expc.runtime.nets.build import build
from expc.runtime.nets.load import config_of, load_classifier, read_config, save_classifier
from expc.runtime.ops import classify as C
from expc.runtime.ops import nets as N


def test_mlp_defaults_differ_by_use():
    p = N.mlp.params()
    assert p.arch(N.CLASSIFIER_DEFAULTS) == {"kind": "mlp", "hidden": [64], "activation": "relu", "dropout": 0.0}
    agent = p.for_agent()  # POET: the published [40, 40] tanh policy
    assert (agent.hidden, agent.activation) == ([40, 40], "tanh")
    given = N.mlp.params(hidden=[8], activation="gelu").for_agent()
    assert (given.hidden, given.activation) == ([8], "gelu")
    assert N.cnn.params().arch() == {"kind": "cnn", "channels": [16, 32], "kernel": 3, "pool": "max", "hidden": [64],
                                     "activation": "relu", "dropout": 0.0}


@pytest.mark.parametrize("arch,shape,names", [
    (N.mlp.params(hidden=[16, 8], dropout=0.5).arch(N.CLASSIFIER_DEFAULTS), [4],
     ["head.bias", "head.weight", "hidden.0.bias", "hidden.0.weight", "hidden.1.bias", "hidden.1.weight"]),
    (N.cnn.params(channels=[4, 6], hidden=[12]).arch(), [1, 8, 8],
     ["conv.0.bias", "conv.0.weight", "conv.1.bias", "conv.1.weight", "head.bias", "head.weight",
      "hidden.0.bias", "hidden.0.weight"]),
])
def test_architectures_save_and_load_as_model_directories(tmp_path, arch, shape, names):
    net = build(arch, shape, 3, (0.0, 16.0), seed=1)
    x = torch.rand(5, *shape) * 16
    ref = net.eval()(x)
    assert ref.shape == (5, 3)
    md = save_classifier(net, config_of(arch, shape, 3, (0.0, 16.0)), tmp_path / "m")
    tensors = load_file(str(md.path / "model.safetensors"))
    assert sorted(tensors) == names  # stable names whatever the dropout; the output layer is head.*
    assert tensors["head.weight"].shape[0] == 3 and md.n_params == sum(t.numel() for t in tensors.values())
    config = json.loads((md.path / "config.json").read_text())
    assert config["architectures"] == [md.architecture] and config["input_shape"] == shape
    assert config["classes"] == 3 and config["input_range"] == [0.0, 16.0] and config["net"] == arch
    loaded, cfg = load_classifier(md)
    assert torch.equal(loaded(x), ref) and cfg == config
    again = build(arch, shape, 3, (0.0, 16.0), seed=1).eval()
    assert torch.equal(again(x), ref)  # the initialization is a function of the seed


def test_the_input_is_scaled_from_the_data_range():
    arch = N.mlp.params(hidden=[4]).arch(N.CLASSIFIER_DEFAULTS)
    raw, unit = build(arch, [2], 2, (0.0, 16.0), seed=0).eval(), build(arch, [2], 2, (0.0, 1.0), seed=0).eval()
    x = torch.tensor([[4.0, 8.0]])
    assert torch.allclose(raw(x), unit(x / 16))


def test_cnn_needs_images():
    with pytest.raises(ValueError, match=r"cnn needs images .* shape \[4\]"):
        build(N.cnn.params().arch(), [4], 3, (0.0, 1.0), seed=0)
    net = build(N.cnn.params(channels=[2]).arch(), [8, 8], 3, (0.0, 1.0), seed=0)  # [H, W]: one channel
    assert net(torch.zeros(2, 8, 8)).shape == (2, 3)


def test_a_model_that_is_not_a_classifier_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(OpError) as e:
        read_config(tmp_path)
    assert e.value.field == "model" and "is a GPT2LMHeadModel, not a classifier" in e.value.message


def test_n_params_reads_the_headers(tmp_path):
    arch = N.mlp.params(hidden=[5]).arch(N.CLASSIFIER_DEFAULTS)
    md = save_classifier(build(arch, [3], 2, (0, 1), seed=0), config_of(arch, [3], 2, (0, 1)), tmp_path / "m")
    m = C.n_params.fn(C.n_params.params(model=md), OpContext(tmp_path / "n"))
    assert m == {"value": 3 * 5 + 5 + 5 * 2 + 2, "tensors": 4, "head": 5 * 2 + 2}


# ---- check time ------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prose.txt").write_text("one two\nthree four\n")

    def write(src: str):
        (tmp_path / "main.exp").write_text(src)
        return tmp_path / "main.exp"

    return write


def test_architectures_are_values(project):
    path = project('param arch ~ choice(mlp(hidden = [32]), cnn(channels = [8]), default = mlp(hidden = [32]))\n'
                   'model a = mlp(hidden = [8])\n'
                   'data d = digits()\n'
                   'train clf = fit(arch, d, steps = 5)\n')
    program = compile(path).program
    assert program.nodes["clf"].type == "classifier"


def test_text_data_is_a_type_error_naming_both_types(project):
    path = project('data prose = split(text("prose.txt"), test = 0.5)\n'
                   "train clf = fit(mlp(), prose.train, steps = 10)\n")
    assert compile_errors(path) == [("E301", 2, 24, "argument 'data' of fit() expects tensors, got data")]


def test_unknown_activation_suggests_the_closest(project):
    path = project('data d = digits()\ntrain clf = fit(mlp(activation = "rleu"), d, steps = 10)\n')
    assert compile_errors(path) == [("E401", 2, 34, "invalid value for 'activation' of mlp(): unknown activation 'rleu': "
                              "did you mean 'relu'? (one of relu, tanh, gelu, silu, sigmoid) (got 'rleu')")]


def test_bad_fit_arguments_are_located(project):
    path = project("data d = digits()\n"
                   "train a = fit(mlp(), d, steps = 10, temperature = 0)\n"
                   "train b = fit(cnn(kernel = 0), d, steps = 10)\n"
                   "train c = fit(mlp(), d, optimizer = es(), steps = 10)\n"
                   "train e = fit(mlp(), d, optimizer = sgd(lr = 0.1, nesterov = true), steps = 10)\n"
                   "train f = fit(mlp(), d, adversarial = adam(), steps = 10)\n")
    assert compile_errors(path) == [
        ("E401", 2, 51, "invalid value for 'temperature' of fit(): Input should be greater than 0 (got 0)"),
        ("E401", 3, 28, "invalid value for 'kernel' of cnn(): Input should be greater than or equal to 1 (got 0)"),
        ("E301", 4, 37, "argument 'optimizer' of fit() expects optimizer, got es"),
        ("E401", 5, 62, "invalid value for 'nesterov' of sgd(): Value error, nesterov = true needs momentum > 0 "
                        "(got True)"),
        ("E301", 6, 39, "argument 'adversarial' of fit() expects attack, got optimizer"),
    ]


def test_a_cnn_is_not_a_poet_agent(project):
    path = project('env e = gym("Pendulum-v1")\npoet p {\n  env = e\n  agent = cnn()\n}\n')
    assert compile_errors(path) == [("E401", 4, 11, "invalid value for 'agent' of poet(): Value error, expected mlp(...)")]


def test_each_architecture_trains_on_its_own_modality(project):
    """fit's model and data agree by type (Agrees): a language model on tensors, a recurrent net on
    text, and a validation set of the wrong modality are check-time errors at the argument."""
    path = project('data prose = split(text("prose.txt"), test = 0.5)\ndata d = split(digits())\n'
                   "train a = fit(rnn_lm(), d.train, steps = 10)\n"
                   "train b = fit(lstm(hidden = 4), prose.train, steps = 10)\n"
                   "train c = fit(mlp(), d.train, steps = 10, validation = prose.test)\n")
    assert compile_errors(path) == [("E301", 3, 25, "argument 'data' of fit() expects data, got tensors"),
                             ("E301", 4, 33, "argument 'data' of fit() expects episodes, got data"),
                             ("E301", 5, 56, "argument 'validation' of fit() expects tensors, got data")]


def test_what_fit_returns_depends_on_what_it_trains(project):
    """ReturnsBy: fit makes a classifier of a net (accuracy takes it) and a plain model of a recurrent
    net or a language model, so using one as a classifier is a check-time error, not a run-time one."""
    path = project('data prose = split(text("prose.txt"), test = 0.5)\ndata d = split(digits())\n'
                   "train lm = fit(rnn_lm(), prose.train, steps = 10)\n"
                   "train clf = fit(mlp(), d.train, steps = 10)\n"
                   "eval ppl = perplexity(lm, prose.test)\n"
                   "eval ok = attack_success(clf, d.test, attack = fgsm(eps = 0.1))\n"
                   "eval bad = attack_success(lm, d.test, attack = fgsm(eps = 0.1))\n")
    assert compile_errors(path) == [("E301", 7, 27, "argument 'model' of attack_success() expects classifier, got model")]
