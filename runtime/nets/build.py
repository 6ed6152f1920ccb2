"""torch modules for the architectures of runtime/ops/nets.py.

A classifier's tensors have stable names whatever its dropout: `conv.I.*` (cnn), `hidden.I.*`, and
`head.*` for the output layer, so `where("head.*", 1e4 * clf, clf)` scales every logit, and two
classifiers of one architecture merge tensor by tensor. The input is scaled from the training
data's range [lo, hi] to [0, 1] inside the network (constants of config.json, not tensors): a
classifier takes raw features, which is what an attack perturbs.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu, "silu": F.silu, "sigmoid": torch.sigmoid}


def sloped_sigmoid(x: torch.Tensor, slope: float = 1.0, offset: float = 0.0) -> torch.Tensor:
    """sigmoid(slope * (x - offset)): the `sigmoid(slope, offset)` activation value."""
    return torch.sigmoid(slope * (x - offset)) if offset else torch.sigmoid(slope * x)


def activation(spec):
    """The function of an architecture's activation: a name ("relu"), or an activation value's record
    ({"kind": "sigmoid", "slope": 2.0, "offset": 0.0}, see runtime/ops/activations.py)."""
    import functools

    if isinstance(spec, dict):
        if spec.get("kind") != "sigmoid":
            raise ValueError(f"unknown activation {spec!r}")
        return functools.partial(sloped_sigmoid, slope=float(spec["slope"]), offset=float(spec["offset"]))
    return ACTIVATIONS[spec]


class RawInputNet(nn.Module):
    """Base of the BUILDERS' modules: keeps arch and input_shape, and scales raw inputs from the training
    data's range [lo, hi] to [0, 1] with constants (shift, scale), not tensors."""

    def __init__(self, arch: dict, input_shape: list[int], input_range: tuple[float, float]):
        super().__init__()
        self.arch = dict(arch)
        self.input_shape = list(input_shape)
        lo, hi = float(input_range[0]), float(input_range[1])
        self.shift, self.scale = lo, (1.0 / (hi - lo) if hi > lo else 1.0)

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        if self.shift:  # skipped when 0 or 1: exact either way, and one kernel fewer per step
            x = x - self.shift
        if self.scale != 1.0:
            x = x * self.scale
        return x


class Classifier(RawInputNet):
    """conv blocks (cnn only), dense hidden layers, a linear head; logits out."""

    def __init__(self, arch: dict, input_shape: list[int], classes: int, input_range: tuple[float, float]):
        super().__init__(arch, input_shape, input_range)
        self.act = activation(arch["activation"])
        self.dropout = float(arch.get("dropout", 0.0))
        self.conv = nn.ModuleList()
        self.pool = None
        self.is_cnn = arch["kind"] == "cnn"
        if self.is_cnn:
            c, h, w = image_shape(input_shape)
            k = int(arch["kernel"])
            for out in arch["channels"]:
                self.conv.append(nn.Conv2d(c, out, k, padding=k // 2))
                c, h, w = out, h + 2 * (k // 2) - k + 1, w + 2 * (k // 2) - k + 1
                if arch["pool"] != "none" and min(h, w) >= 2:
                    h, w = h // 2, w // 2
            self.pool = {"max": F.max_pool2d, "avg": F.avg_pool2d}.get(arch["pool"])
            width = c * h * w
        else:
            width = math.prod(input_shape)
        self.hidden = nn.ModuleList()
        for h in arch["hidden"]:
            self.hidden.append(nn.Linear(width, h))
            width = h
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scaled(x)
        if self.is_cnn:
            x = x.reshape(x.shape[0], *image_shape(self.input_shape))
            for conv in self.conv:
                x = self.act(conv(x))
                if self.pool is not None and min(x.shape[-2:]) >= 2:
                    x = self.pool(x, 2)
        x = x.flatten(1)
        act, dropout = self.act, self.dropout
        for layer in self.hidden:
            x = act(layer(x))
            if dropout:
                x = F.dropout(x, dropout, self.training)
        return self.head(x)


def image_shape(shape: list[int]) -> tuple[int, int, int]:
    """[C, H, W] of an image input ([H, W] is one channel); ValueError for other shapes."""
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    if len(shape) == 2:
        return 1, int(shape[0]), int(shape[1])
    raise ValueError(f"cnn needs images ([channels, height, width] or [height, width]), got examples of shape {shape}")


# The torch module of each architecture kind (config.json's net.kind): "module:class", imported when a
# network of that kind is built. A builder takes (arch, input_shape, classes, input_range), maps inputs
# to logits, names its output layer head.*, and is a RawInputNet (arch, input_shape, shift, scale).
BUILDERS: dict[str, str] = {
    "mlp": "expc.runtime.nets.build:Classifier",
    "cnn": "expc.runtime.nets.build:Classifier",
    "network": "expc.runtime.nets.network:Network",
}


def builder(kind: str):
    import importlib

    if kind not in BUILDERS:
        raise ValueError(f"unknown architecture kind {kind!r} (known: {', '.join(sorted(BUILDERS))})")
    module, name = BUILDERS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def build(arch: dict, input_shape: list[int], classes: int, input_range: tuple[float, float], seed: int) -> nn.Module:
    """A classifier with torch's default initialization drawn from `seed` (the global RNG is untouched)."""
    cls = builder(arch["kind"])
    with torch.random.fork_rng(devices=[]):
        # the CPU generator only: torch.manual_seed would also queue seeds for CUDA past the fork
        torch.default_generator.manual_seed(seed)
        return cls(arch, input_shape, classes, input_range)
