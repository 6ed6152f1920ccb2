"""Classifiers as model directories: config.json (architecture, input shape, classes, input range) and
model.safetensors (`head.*` is the output layer). Merges of classifiers keep the first operand's
config.json, so a merged classifier loads like a trained one. Nothing is unpickled."""

from __future__ import annotations

from pathlib import Path

from expc.runtime.api import OpError
from expc.runtime.nets.build import Classifier, build
from expc.runtime.nets.modeldir_io import (architecture_of, load_weights, read_config_json, read_weights,
                                          save_model_dir)
from expc.runtime.values import ModelDir

FORMAT = 1
ARCHITECTURES = {"mlp": "ExpcMLP", "cnn": "ExpcCNN"}


def config_of(arch: dict, input_shape: list[int], classes: int, input_range: tuple[float, float],
              training: dict | None = None) -> dict:
    return {
        "architectures": [ARCHITECTURES.get(arch["kind"], "ExpcNet")],
        "expc_classifier": FORMAT,
        "net": arch,
        "input_shape": list(input_shape),
        "classes": int(classes),
        "input_range": [float(input_range[0]), float(input_range[1])],
        "torch_dtype": "float32",
        **({"training": training} if training else {}),
    }


def save_classifier(net: Classifier, config: dict, out_dir: Path) -> ModelDir:
    return save_model_dir(net, config, out_dir)


def read_config(path: Path, field: str = "model") -> dict:
    """The classifier config of a model directory; an OpError on `field` when it is not a classifier."""
    cfg_path = Path(path) / "config.json"
    config = read_config_json(path, field)
    if not isinstance(config, dict) or "expc_classifier" not in config:
        arch = architecture_of(config)
        raise OpError(f"the model is a {arch}, not a classifier (its config.json has no expc_classifier)",
                      field=field, hint="classifiers come from fit(...), or merges of them")
    if config["expc_classifier"] != FORMAT:
        raise OpError(f"{cfg_path}: classifier format {config['expc_classifier']} (this expc reads {FORMAT})",
                      field=field)
    return config


def load_classifier(model, device: str = "cpu", field: str = "model") -> tuple[Classifier, dict]:
    """(the classifier in eval mode on `device`, its config) from a model directory (a ModelDir or a
    path). Weights stored in another dtype (a cast merge) are loaded as float32."""
    path = Path(getattr(model, "path", model))
    config = read_config(path, field)
    net = build(config["net"], config["input_shape"], config["classes"], tuple(config["input_range"]), seed=0)
    load_weights(net, read_weights(path, field), path, field)
    return net.to(device).eval(), config
