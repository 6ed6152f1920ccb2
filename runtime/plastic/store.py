"""Recurrent nets as model directories: config.json (the architecture, input and output sizes, whether
there is a value head, what trained it) and model.safetensors. Nothing is pickled; the Hebbian and
eligibility traces are episode state, never stored."""

from __future__ import annotations

from pathlib import Path

from expc.runtime.api import OpError
from expc.runtime.nets.modeldir_io import (architecture_of, load_weights, read_config_json, read_weights,
                                          save_model_dir)
from expc.runtime.plastic.nets import RecurrentNet, build
from expc.runtime.values import ModelDir

FORMAT = 1
ARCHITECTURES = {"rnn": "ExpcRNN", "lstm": "ExpcLSTM", "plastic_rnn": "ExpcPlasticRNN"}


def config_of(net: RecurrentNet, task: dict, training: dict) -> dict:
    return {
        "architectures": [ARCHITECTURES[net.kind]],
        "expc_recurrent": FORMAT,
        "net": net.arch,
        "inputs": net.inputs,
        "outputs": net.outputs,
        "value_head": net.value is not None,
        "task": task,
        "training": training,
        "torch_dtype": "float32",
    }


def save(net: RecurrentNet, config: dict, out_dir: Path) -> ModelDir:
    return save_model_dir(net, config, out_dir)


def read_config(path: Path, field: str = "model") -> dict:
    config = read_config_json(path, field)
    if not isinstance(config, dict) or "expc_recurrent" not in config:
        arch = architecture_of(config)
        raise OpError(f"the model is a {arch}, not a recurrent net (its config.json has no expc_recurrent)",
                      field=field, hint="recurrent nets come from fit(rnn(...) | lstm(...) | plastic_rnn(...), "
                      "EPISODES) or a2c(...)")
    if config["expc_recurrent"] != FORMAT:
        raise OpError(f"{path}: recurrent net format {config['expc_recurrent']} (this expc reads {FORMAT})",
                      field=field)
    return config


def load(model, device: str = "cpu", field: str = "model") -> tuple[RecurrentNet, dict]:
    """(the net in eval mode on `device`, its config) from a model directory."""
    path = Path(getattr(model, "path", model))
    config = read_config(path, field)
    net = build(config["net"], config["inputs"], config["outputs"], bool(config["value_head"]), seed=0)
    load_weights(net, read_weights(path, field), path, field)
    return net.to(device).eval(), config
