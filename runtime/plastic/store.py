"""Recurrent nets as model directories: config.json (the architecture, input and output sizes, whether
there is a value head, what trained it) and model.safetensors. Nothing is pickled; the Hebbian and
eligibility traces are episode state, never stored."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from expc.runtime.api import OpError
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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return ModelDir(path=out_dir, architecture=config["architectures"][0], dtype="float32",
                    n_params=sum(t.numel() for t in tensors.values()))


def read_config(path: Path, field: str = "model") -> dict:
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: not a model directory ({e})", field=field) from None
    if not isinstance(config, dict) or "expc_recurrent" not in config:
        arch = (config.get("architectures") or ["?"])[0] if isinstance(config, dict) else "?"
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
    try:
        tensors = load_file(str(path / "model.safetensors"))
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: cannot read model.safetensors: {e}", field=field) from None
    expected = net.state_dict()
    bad = sorted(k for k, v in expected.items() if k not in tensors or tensors[k].shape != v.shape)
    if bad:
        raise OpError(f"{path}: the weights do not match the architecture in config.json (tensor {bad[0]!r})",
                      field=field)
    net.load_state_dict({k: tensors[k] for k in expected})
    return net.to(device).eval(), config
