"""Training checkpoints without pickle: tensors (weights, optimizer state, RNG states as uint8 tensors)
in a safetensors file, scalars in a JSON file that names it.

Write order makes every moment of a kill safe: the new `ckpt-STEP.safetensors` is written (to a
temporary name, then renamed), then `checkpoint.json` is replaced atomically to point at it, then older
tensor files are deleted. A reader only follows checkpoint.json, so it never sees a half-written step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

INDEX = "checkpoint.json"
FORMAT = 1


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(work_dir: Path, step: int, model, optimizer, rng: dict[str, torch.Tensor], extra: dict | None = None) -> None:
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():  # tied weights appear once
        tensors[f"model.{name}"] = p.detach()
    scalars: dict[str, dict] = {}
    for idx, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    for name, state in rng.items():
        tensors[f"rng.{name}"] = state
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    fname = f"ckpt-{step}.safetensors"
    tmp = work_dir / (fname + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, work_dir / fname)
    index = {"format": FORMAT, "step": step, "tensors": fname, "optim_scalars": scalars, **(extra or {})}
    _atomic_write_text(work_dir / INDEX, json.dumps(index, indent=1) + "\n")
    for old in work_dir.glob("ckpt-*.safetensors"):
        if old.name != fname:
            old.unlink(missing_ok=True)


def load(work_dir: Path, model, optimizer) -> tuple[int, dict[str, torch.Tensor], dict] | None:
    """Restore model and optimizer in place; returns (step, rng states, index) or None if there is no
    usable checkpoint (a missing or foreign file is ignored: training starts over)."""
    index_path = Path(work_dir) / INDEX
    if not index_path.exists():
        return None
    try:
        index = json.loads(index_path.read_text())
        if index.get("format") != FORMAT:
            return None
        tensors = load_file(str(Path(work_dir) / index["tensors"]))
    except (OSError, ValueError, KeyError):
        return None
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(tensors[f"model.{name}"])
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, k = key.split(".", 2)
            state.setdefault(int(idx), {})[k] = value
    for idx, scalars in index.get("optim_scalars", {}).items():
        state.setdefault(int(idx), {}).update(scalars)
    sd = optimizer.state_dict()
    sd["state"] = state
    optimizer.load_state_dict(sd)
    rng = {k.removeprefix("rng."): v for k, v in tensors.items() if k.startswith("rng.")}
    return index["step"], rng, index
