"""The `mlps(...)` architecture space: genomes are `mlp(...)` values {"$op": "mlp", "hidden": [widths],
"activation": name}. Sampling, mutation, crossover and distance are plain list operations on the
hidden widths (no torch): `fit` builds the network from the genome like any `mlp(...)` it is given.

Hand-written rather than DEAP's list operators: DEAP's mutations work on fixed-length lists of one
gene type and draw from the global `random` module, and these genomes vary in depth (a layer is
inserted or removed) and must stay within the space's bounds, drawn from the caller's generator.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class MlpSpace:
    depth: tuple[int, int]
    width: tuple[int, int]
    activations: tuple[str, ...]

    def genome(self, hidden: list[int], activation: str) -> dict:
        return {"$op": "mlp", "hidden": [int(w) for w in hidden], "activation": activation}

    def clamp_width(self, w: float) -> int:
        return int(min(self.width[1], max(self.width[0], round(w))))

    def random_width(self, rng: random.Random) -> int:
        """Log-uniform: 8 -> 16 is as big a step as 64 -> 128."""
        lo, hi = self.width
        return self.clamp_width(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    def default(self) -> dict:
        lo, hi = self.width
        return self.genome([self.clamp_width(math.sqrt(lo * hi))] * self.depth[0], self.activations[0])

    def sample(self, rng: random.Random) -> dict:
        n = rng.randint(*self.depth)
        return self.genome([self.random_width(rng) for _ in range(n)], rng.choice(self.activations))

    def contains(self, g) -> str | None:
        if not isinstance(g, dict) or g.get("$op") != "mlp":
            return "is an mlp(hidden = [...], activation = ...) value"
        extra = sorted(set(g) - {"$op", "hidden", "activation"})
        if extra:
            return f"has fields the space does not search: {', '.join(extra)}"
        hidden = g.get("hidden")
        if not isinstance(hidden, list) or not self.depth[0] <= len(hidden) <= self.depth[1]:
            return f"must have {self.depth[0]} to {self.depth[1]} hidden layers"
        lo, hi = self.width
        if any(isinstance(w, bool) or not isinstance(w, int) or not lo <= w <= hi for w in hidden):
            return f"hidden widths must be integers in [{lo}, {hi}]"
        if g.get("activation") not in self.activations:
            return f"activation must be one of {list(self.activations)}"
        return None

    def mutate(self, g: dict, rng: random.Random) -> dict:
        """One structural change: resize a layer (x 2^N(0, 0.5)), insert or remove a layer, or change
        the activation; a change the bounds forbid falls back to resizing."""
        hidden, activation = list(g["hidden"]), g["activation"]
        moves = ["resize", "resize"]
        if len(hidden) < self.depth[1]:
            moves.append("insert")
        if len(hidden) > self.depth[0]:
            moves.append("remove")
        if len(self.activations) > 1:
            moves.append("activation")
        move = rng.choice(moves)
        if move == "insert":
            i = rng.randint(0, len(hidden))
            near = hidden[min(i, len(hidden) - 1)] if hidden else self.random_width(rng)
            hidden.insert(i, near)
        elif move == "remove":
            hidden.pop(rng.randrange(len(hidden)))
        elif move == "activation":
            activation = rng.choice([a for a in self.activations if a != activation])
        else:
            i = rng.randrange(len(hidden))
            hidden[i] = self.clamp_width(hidden[i] * 2 ** rng.gauss(0.0, 0.5))
        return self.genome(hidden, activation)

    def crossover(self, a: dict, b: dict, rng: random.Random) -> tuple[dict, dict]:
        """One-point crossover of the layer lists at a point inside the shorter one (children keep the
        parents' depths, so they stay in bounds), activations swapped with probability 1/2."""
        ha, hb = a["hidden"], b["hidden"]
        cut = rng.randint(0, min(len(ha), len(hb)))
        c1, c2 = ha[:cut] + hb[cut:], hb[:cut] + ha[cut:]
        act1, act2 = a["activation"], b["activation"]
        if rng.random() < 0.5:
            act1, act2 = act2, act1
        return self.genome(c1, act1), self.genome(c2, act2)

    def distance(self, a: dict, b: dict) -> float:
        """Per aligned layer |log2 of the width ratio|, 1 per layer only one has, 1 for another
        activation."""
        ha, hb = a["hidden"], b["hidden"]
        d = sum(abs(math.log2(x) - math.log2(y)) for x, y in zip(ha, hb)) + abs(len(ha) - len(hb))
        return float(d + (a["activation"] != b["activation"]))

    def describe(self, g: dict) -> list[str]:
        layers = " -> ".join(f"{w} {g['activation']}" for w in g["hidden"])
        return [f"mlp: inputs -> {layers} -> classes"]
