"""Classifiers as model directories: config.json (architecture, input shape, classes, input range) and
model.safetensors (`head.*` is the output layer). Merges of classifiers keep the first operand's
config.json, so a merged classifier loads like a trained one. Nothing is unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from expc.runtime.api import OpError
from expc.runtime.nets.build import Classifier, build
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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return ModelDir(path=out_dir, architecture=config["architectures"][0], dtype="float32",
                    n_params=sum(t.numel() for t in tensors.values()))


def read_config(path: Path, field: str = "model") -> dict:
    """The classifier config of a model directory; an OpError on `field` when it is not a classifier."""
    cfg_path = Path(path) / "config.json"
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: not a model directory ({e})", field=field) from None
    if not isinstance(config, dict) or "expc_classifier" not in config:
        arch = (config.get("architectures") or ["?"])[0] if isinstance(config, dict) else "?"
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
    try:
        tensors = load_file(str(path / "model.safetensors"))
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: cannot read model.safetensors: {e}", field=field) from None
    expected = net.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing or any(tensors[k].shape != v.shape for k, v in expected.items()):
        bad = missing[0] if missing else next(k for k, v in expected.items() if tensors[k].shape != v.shape)
        raise OpError(f"{path}: the weights do not match the architecture in config.json (tensor {bad!r})",
                      field=field)
    with torch.no_grad():
        for k, v in expected.items():
            v.copy_(tensors[k])
    return net.to(device).eval(), config
