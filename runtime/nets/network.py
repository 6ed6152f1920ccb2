"""The torch module of a CoDeepNEAT network (`network(...)`, the genome of a `coevolved` param; the JSON
is described in expc.runtime.genomes.coevolved): a DAG of modules, each a small DAG of conv, dense and
dropout layers, then a linear head.

Shapes: a value is an image [C, H, W] or a vector [N]. Inputs of two or more dimensions are images
([H, W] has one channel); a vector input is a 1x1 image to a conv layer. Convolutions keep the
resolution (zero padding, "same"), so images meeting at a node have equal H x W and are concatenated along
channels; when an image meets a vector, both are flattened and concatenated. A dense layer flattens
its input. Conv and dense layers are followed by relu. Tensor names are `layers.node{B}_layer{L}.*`
(blueprint node B, layer L of its module) and `head.*` for the output layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from expc.runtime.genomes.coevolved import sources_and_sinks
from expc.runtime.nets.build import RawInputNet

Shape = tuple[int, ...]


def merged_shape(shapes: list[Shape]) -> Shape:
    if len(shapes) == 1:
        return shapes[0]
    if all(len(s) == 3 for s in shapes) and len({s[1:] for s in shapes}) == 1:
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    return (sum(math.prod(s) for s in shapes),)


def merge(xs: list[torch.Tensor]) -> torch.Tensor:
    """The tensor version of merged_shape (a batch dimension first)."""
    if len(xs) == 1:
        return xs[0]
    if all(x.dim() == 4 for x in xs) and len({x.shape[2:] for x in xs}) == 1:
        return torch.cat(xs, dim=1)
    return torch.cat([x.flatten(1) for x in xs], dim=1)


def input_image_shape(shape: list[int]) -> Shape:
    if len(shape) == 1:
        return (int(shape[0]),)
    if len(shape) == 2:
        return (1, int(shape[0]), int(shape[1]))
    if len(shape) == 3:
        return tuple(int(s) for s in shape)
    return (math.prod(shape),)


class Network(RawInputNet):
    """Maps raw inputs (scaled from [lo, hi] to [0, 1]) to logits through the assembled modules."""

    def __init__(self, arch: dict, input_shape: list[int], classes: int, input_range: tuple[float, float]):
        super().__init__(arch, input_shape, input_range)
        self.in_shape = input_image_shape(self.input_shape)
        bp, modules = arch["blueprint"], arch["modules"]
        self.bp_preds, self.bp_sinks = sources_and_sinks(len(bp["nodes"]), bp["edges"])
        self.mod_graphs = [sources_and_sinks(len(m["layers"]), m["edges"]) for m in modules]
        self.layers = nn.ModuleDict()
        outs: list[Shape] = []
        for b, m in enumerate(bp["nodes"]):
            shape = merged_shape([outs[i] for i in self.bp_preds[b]] or [self.in_shape])
            outs.append(self._module(b, modules[m], self.mod_graphs[m], shape))
        width = math.prod(merged_shape([outs[i] for i in self.bp_sinks]))
        self.head = nn.Linear(width, classes)

    def _module(self, b: int, module: dict, graph, shape: Shape) -> Shape:
        preds, sinks = graph
        outs: list[Shape] = []
        for j, layer in enumerate(module["layers"]):
            s = merged_shape([outs[i] for i in preds[j]] or [shape])
            name = f"node{b}_layer{j}"
            if layer["type"] == "conv":
                # a vector [N] is a 1x1 image of N channels
                # padded in forward (as padding="same" would, without its warning for even kernels)
                self.layers[name] = nn.Conv2d(s[0], int(layer["channels"]), int(layer["kernel"]))
                s = (int(layer["channels"]), *(s[1:] if len(s) == 3 else (1, 1)))
            elif layer["type"] == "dense":
                self.layers[name] = nn.Linear(math.prod(s), int(layer["units"]))
                s = (int(layer["units"]),)
            outs.append(s)
        return merged_shape([outs[i] for i in sinks])

    def _run_module(self, b: int, m: int, x: torch.Tensor) -> torch.Tensor:
        preds, sinks = self.mod_graphs[m]
        outs: list[torch.Tensor] = []
        for j, layer in enumerate(self.arch["modules"][m]["layers"]):
            h = merge([outs[i] for i in preds[j]] or [x])
            kind = layer["type"]
            if kind == "conv":
                if h.dim() == 2:
                    h = h[:, :, None, None]
                k = int(layer["kernel"])
                if k > 1:
                    h = F.pad(h, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2))
                h = F.relu(self.layers[f"node{b}_layer{j}"](h))
            elif kind == "dense":
                h = F.relu(self.layers[f"node{b}_layer{j}"](h.flatten(1)))
            else:
                h = F.dropout(h, float(layer["rate"]), self.training)
            outs.append(h)
        return merge([outs[i] for i in sinks])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scaled(x)
        x = x.reshape(x.shape[0], *self.in_shape)
        outs: list[torch.Tensor] = []
        for b, m in enumerate(self.arch["blueprint"]["nodes"]):
            h = merge([outs[i] for i in self.bp_preds[b]] or [x])
            outs.append(self._run_module(b, m, h))
        return self.head(merge([outs[i] for i in self.bp_sinks]).flatten(1))
