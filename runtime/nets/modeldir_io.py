"""A torch module on disk as a model directory: its tensors in a safetensors file beside config.json.
Shared by every kind expc writes (classifiers, recurrent nets, rnn_lm, GTN teachers); each kind keeps
its own config and the checks of it. Nothing is pickled."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from expc.runtime.api import OpError
from expc.runtime.values import ModelDir

WEIGHTS = "model.safetensors"


def save_module(module: torch.nn.Module, config: dict, out_dir: Path, weights: str = WEIGHTS) -> int:
    """Write `module`'s tensors to out_dir/weights and `config` to out_dir/config.json, each through a
    temporary file, so a killed run leaves no half-written file under its final name; the number of
    values stored."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    tmp = out_dir / (weights + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out_dir / weights)
    tmp = out_dir / "config.json.tmp"
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out_dir / "config.json")
    return sum(t.numel() for t in tensors.values())


def save_model_dir(module: torch.nn.Module, config: dict, out_dir: Path) -> ModelDir:
    """save_module to model.safetensors, as the ModelDir value of config.architectures[0]."""
    n_params = save_module(module, config, out_dir)
    return ModelDir(path=Path(out_dir), architecture=config["architectures"][0], dtype="float32", n_params=n_params)


def read_config_json(path: Path, field: str):
    """The parsed config.json of a model directory; an OpError on `field` when there is none."""
    try:
        return json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: not a model directory ({e})", field=field) from None


def architecture_of(config) -> str:
    """config.architectures[0], "?" when unknown: what a model directory of the wrong kind is called."""
    return (config.get("architectures") or ["?"])[0] if isinstance(config, dict) else "?"


def read_weights(path: Path, field: str, weights: str = WEIGHTS) -> dict[str, torch.Tensor]:
    """The tensors of path/weights; an OpError on `field` when they cannot be read."""
    try:
        return load_file(str(Path(path) / weights))
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: cannot read {weights}: {e}", field=field) from None


def read_tagged(path: Path, weights: str, what: str, tag: str, version: int, field: str) -> tuple[dict, dict]:
    """(config, tensors) of a directory of one kind of module (a teacher, a dish): config.json must carry
    `tag` = `version`; an OpError on `field` naming `what` otherwise, or when either file is unreadable."""
    path = Path(path)
    try:
        config = json.loads((path / "config.json").read_text())
        tensors = load_file(str(path / weights))
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: not a {what} ({e})", field=field) from None
    if config.get(tag) != version:
        raise OpError(f"{path}: {what} format {config.get(tag)} (this expc reads {version})", field=field)
    return config, tensors


def load_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path, field: str) -> None:
    """Copy `tensors` into `module` (cast to its dtypes); an OpError on `field` naming the first missing
    tensor, else the first of another shape, when they do not fit the architecture config.json built."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing or any(tensors[k].shape != v.shape for k, v in expected.items()):
        bad = missing[0] if missing else next(k for k, v in expected.items() if tensors[k].shape != v.shape)
        raise OpError(f"{path}: the weights do not match the architecture in config.json (tensor {bad!r})",
                      field=field)
    module.load_state_dict({k: tensors[k] for k in expected})
