"""A cell value (expc.runtime.genomes.cell_trees) compiled to a torch module that runs a sequence.

Each `linear` node is an nn.Linear named `trees.OUTPUT.K` (the K-th linear node of that output's tree
in prefix order), initialized like torch's recurrent cells: uniform in ±1/sqrt(hidden). The trees are
compiled once into closures; per step only tensor operations run. Two fusions keep the Python cost
per step low without changing what is computed: the linear maps of `x` are one matrix product over
the whole sequence before the loop (x does not depend on the state), and at each step the linear
maps of one leaf (`h`, `c`, `c'`) are one matrix product whose result is split. Everything else is
evaluated node by node, as written.

Each new state value is clipped to ±STATE_BOUND: an evolved cell may feed a state back through
products (h' = h * h) and overflow float32 within a few steps, which would end its training with a
NaN instead of a (poor) perplexity. The clip never acts on an LSTM or a GRU in practice: a GRU's state
stays in (-1, 1) and an LSTM's c changes by at most 1 per step.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from expc.runtime.genomes.cell_trees import INPUT, check_cell, linears, order

Env = dict[str, Any]
STATE_BOUND = 1000.0
_BINARY: dict[str, Callable] = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "max": torch.maximum}
_UNARY: dict[str, Callable] = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


class CellModule(nn.Module):
    """One layer: `forward(xs, state)` with xs of shape (T, B, x_size) and state {output: (B, hidden)}
    (None: zeros) returns the outputs (T, B, hidden) of the cell's `output` and the last state."""

    def __init__(self, cell: Any, x_size: int, hidden: int):
        super().__init__()
        self.cell = check_cell(cell)
        self.hidden = int(hidden)
        trees = self.cell["trees"]
        self.order = order(trees)
        self.output = self.cell["output"]
        self.trees = nn.ModuleDict({
            name: nn.ModuleList([nn.Linear(x_size if arg == INPUT else hidden, hidden) for arg in linears(t)])
            for name, t in trees.items()
        })
        bound = 1.0 / hidden ** 0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        # the linear nodes whose argument is a leaf, grouped by the leaf: (output, k) -> (leaf, position)
        self.groups: dict[str, list[tuple[str, int]]] = {}
        for name in sorted(trees):
            for k, arg in enumerate(linears(trees[name])):
                if isinstance(arg, str):
                    self.groups.setdefault(arg, []).append((name, k))
        self.position = {node: (leaf, i) for leaf, nodes in self.groups.items() for i, node in enumerate(nodes)}
        self.fns = {name: self._compile(trees[name], name, [0]) for name in trees}

    def _compile(self, t: Any, name: str, counter: list[int]) -> Callable[[Env], torch.Tensor]:
        if isinstance(t, str):
            return lambda env: env[t]
        op, args = t[0], t[1:]
        if op == "linear":
            k = counter[0]
            counter[0] += 1
            if isinstance(args[0], str):
                leaf, i = self.position[(name, k)]
                if leaf == INPUT:
                    return lambda env: env["@x"][i]
                return lambda env: _projected(env, leaf)[i]
            inner = self._compile(args[0], name, counter)
            layer = self.trees[name][k]
            return lambda env: F.linear(inner(env), layer.weight, layer.bias)
        fs = [self._compile(a, name, counter) for a in args]
        if op in _BINARY:
            f, a, b = _BINARY[op], fs[0], fs[1]
            return lambda env: f(a(env), b(env))
        if op in _UNARY:
            f, a = _UNARY[op], fs[0]
            return lambda env: f(a(env))
        if op == "blend":  # g*a + (1-g)*b = b + g*(a - b)
            g, a, b = fs
            return lambda env: torch.lerp(b(env), a(env), g(env))
        raise ValueError(f"unknown op {op!r}")

    def fused(self, leaf: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The stacked weights and biases of the linear nodes that read `leaf`."""
        layers = [self.trees[name][k] for name, k in self.groups[leaf]]
        if len(layers) == 1:
            return layers[0].weight, layers[0].bias
        return torch.cat([m.weight for m in layers]), torch.cat([m.bias for m in layers])

    def zero_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: like.new_zeros(batch, self.hidden) for name in self.cell["trees"]}

    def forward(self, xs: torch.Tensor, state: dict[str, torch.Tensor] | None = None):
        steps, batch = xs.shape[0], xs.shape[1]
        if state is None:
            state = self.zero_state(batch, xs)
        w, b = self.fused(INPUT)
        x_proj = F.linear(xs, w, b).split(self.hidden, dim=-1)  # every x map, for every step at once
        weights = {leaf: self.fused(leaf) for leaf in self.groups if leaf != INPUT}
        outputs = []
        for t in range(steps):
            env: Env = {"@x": [p[t] for p in x_proj], "@w": weights, "@hidden": self.hidden, **state}
            for name in self.order:
                env[name + "'"] = self.fns[name](env).clamp(-STATE_BOUND, STATE_BOUND)
            state = {name: env[name + "'"] for name in self.order}
            outputs.append(state[self.output])
        return torch.stack(outputs), state


def _projected(env: Env, leaf: str) -> tuple[torch.Tensor, ...]:
    """The linear maps of `leaf` at this step, computed once when a tree first reads one."""
    key = "@" + leaf
    hit = env.get(key)
    if hit is None:
        w, b = env["@w"][leaf]
        hit = env[key] = F.linear(env[leaf], w, b).split(env["@hidden"], dim=-1)
    return hit
