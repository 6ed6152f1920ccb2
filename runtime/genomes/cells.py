"""The `cells(...)` space: recurrent cells (expc.runtime.genomes.cell_trees) evolved by genetic
programming with DEAP's gp toolbox: ramped half-and-half generation (genHalfAndHalf), subtree and
node-replacement mutation (mutUniform, mutNodeReplacement), one-point subtree crossover (cxOnePoint),
all under a static height limit (staticLimit). A cell has one tree per output; crossover is
multiple-tree and homologous (tree `c` of one parent with tree `c` of the other).

Genomes are JSON: a tree is converted to a DEAP PrimitiveTree for an operation and back right after;
nothing is pickled. DEAP draws from the global `random` module, so each operation runs with it
seeded from the caller's generator (and restored afterwards): the same seed gives the same genomes.

Tree `i` (in the order of `outputs`) may read the new value of an output listed after it (`h` reads
`c'` in an LSTM), which keeps every cell acyclic. `x` enters through a linear map, a DEAP terminal
"linear(x)": every node of a tree is then a hidden-size vector, so the trees are untyped for DEAP.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from expc.runtime.genomes import cell_trees
from expc.runtime.genomes.cell_trees import INPUT, OPS, CellError, cell_value, prime
from expc.runtime.genomes.global_random import drawing_from

LINEAR_X = "linear(x)"  # the DEAP terminal of ["linear", "x"]
TRIES = 20  # attempts at a child that reads x and differs from its parent, before keeping the parent


def _op(*args):  # DEAP wants a callable per primitive; trees are never evaluated through DEAP
    raise NotImplementedError


@dataclass(frozen=True)
class CellSpace:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    ops: tuple[str, ...]
    max_depth: int

    # -- DEAP primitive sets, one per output (the leaves it may read differ) ------------------------

    def leaves(self, i: int) -> list[str]:
        """What tree i may read: the previous states among the inputs, the new values of the outputs
        after it, and linear(x)."""
        states = [s for s in self.inputs if s != INPUT]
        return states + [prime(o) for o in self.outputs[i + 1:]] + ([LINEAR_X] if INPUT in self.inputs else [])

    @cached_property
    def psets(self) -> list[Any]:
        from deap import gp

        out = []
        for i, name in enumerate(self.outputs):
            pset = gp.PrimitiveSet(f"cell_{name}", 0)
            for op in self.ops:
                pset.addPrimitive(_op, OPS[op], name=op)
            for leaf in self.leaves(i):
                pset.addTerminal(leaf, name=leaf)
            out.append(pset)
        return out

    def to_deap(self, tree: Any, i: int):
        from deap import gp

        pset = self.psets[i]
        nodes: list[Any] = []

        def walk(t):
            if isinstance(t, str):
                nodes.append(pset.mapping[t])
            elif t[0] == "linear" and t[1] == INPUT:
                nodes.append(pset.mapping[LINEAR_X])
            else:
                nodes.append(pset.mapping[t[0]])
                for a in t[1:]:
                    walk(a)

        walk(tree)
        return gp.PrimitiveTree(nodes)

    @staticmethod
    def from_deap(nodes) -> Any:
        def walk(i: int) -> tuple[Any, int]:
            n = nodes[i]
            if n.arity == 0:
                return (["linear", INPUT] if n.name == LINEAR_X else n.name), i + 1
            args, j = [], i + 1
            for _ in range(n.arity):
                a, j = walk(j)
                args.append(a)
            return [n.name, *args], j

        tree, end = walk(0)
        assert end == len(nodes)
        return tree

    def _genome(self, trees: dict[str, Any]) -> dict:
        return cell_value({o: trees[o] for o in self.outputs}, self.outputs[0])

    def _trees(self, g: dict) -> dict[str, Any]:
        return cell_trees.canonical(g)["trees"]

    # -- membership -----------------------------------------------------------------------------------

    def contains(self, g: Any) -> str | None:
        try:
            cell = cell_trees.check_cell(g)
        except CellError as e:
            return str(e)
        trees = cell["trees"]
        if set(trees) != set(self.outputs):
            return f"has outputs {sorted(trees)}, the space {list(self.outputs)}"
        if cell["output"] != self.outputs[0]:
            return f"outputs {cell['output']!r}; the space's cells output {self.outputs[0]!r} (the first of outputs)"
        for i, name in enumerate(self.outputs):
            t = trees[name]
            for leaf in sorted(_leaves(t)):
                if leaf not in self.leaves(i):
                    return f"tree {name} reads {leaf!r}, which it may not (it may read {', '.join(self.leaves(i))})"
            ops = _ops(t) - set(self.ops)
            if ops:
                return f"tree {name} uses {', '.join(sorted(ops))}, not among the space's ops"
            if cell_trees.height(t) > self.max_depth:
                return f"tree {name} has height {cell_trees.height(t)}, above max_depth = {self.max_depth}"
        return None

    # -- the genetic operators --------------------------------------------------------------------

    def _valid_child(self, trees: dict[str, Any], parent: dict[str, Any]) -> bool:
        reads_x = any(LINEAR_X in _leaves(t) for t in trees.values())
        return reads_x and trees != parent

    def sample(self, rng: random.Random) -> dict:
        """Each tree by ramped half-and-half, heights 1 to max_depth - 2 (at least 2), until the cell
        reads x."""
        from deap import gp

        hi = max(1, min(self.max_depth, max(2, self.max_depth - 2)))
        with drawing_from(rng):
            for _ in range(TRIES):
                trees = {o: self.from_deap(gp.genHalfAndHalf(self.psets[i], 1, hi))
                         for i, o in enumerate(self.outputs)}
                if self._valid_child(trees, {}):
                    return self._genome(trees)
        # a space whose trees rarely read x (say, many states and ops): read it in the first tree
        trees[self.outputs[0]] = ["add", ["linear", INPUT], trees[self.outputs[0]]] if "add" in self.ops else \
            ["linear", INPUT]
        return self._genome(trees)

    def mutate(self, g: dict, rng: random.Random) -> dict:
        """One tree (at random) changes: a random subtree is regrown (mutUniform, grow or full of
        height 0-2) or one node is replaced by another of its arity (mutNodeReplacement); a child
        over max_depth is its parent again (staticLimit), and a child that no longer reads x (or is
        unchanged) is drawn again."""
        from deap import gp

        parent = self._trees(g)
        limit = gp.staticLimit(key=lambda t: t.height, max_value=self.max_depth)
        with drawing_from(rng):
            for _ in range(TRIES):
                i = random.randrange(len(self.outputs))
                name, pset = self.outputs[i], self.psets[i]
                tree = self.to_deap(parent[name], i)
                if random.random() < 0.5:
                    expr = lambda pset, type_: gp.genHalfAndHalf(pset, 0, 2, type_)  # noqa: E731
                    (child,) = limit(gp.mutUniform)(tree, expr=expr, pset=pset)
                else:
                    (child,) = limit(gp.mutNodeReplacement)(tree, pset=pset)
                trees = {**parent, name: self.from_deap(child)}
                if self._valid_child(trees, parent):
                    return self._genome(trees)
        return self._genome(parent)

    def crossover(self, a: dict, b: dict, rng: random.Random) -> tuple[dict, dict]:
        """Homologous multiple-tree crossover: each tree of `a` is crossed with the same tree of `b`
        (cxOnePoint) with probability 1/2, at least one tree; a child over max_depth gets a parent's
        tree back (staticLimit); a child that does not read x is its parent."""
        from deap import gp

        ta, tb = self._trees(a), self._trees(b)
        limit = gp.staticLimit(key=lambda t: t.height, max_value=self.max_depth)
        with drawing_from(rng):
            crossed = [i for i in range(len(self.outputs)) if random.random() < 0.5]
            if not crossed:
                crossed = [random.randrange(len(self.outputs))]
            ca, cb = dict(ta), dict(tb)
            for i in crossed:
                name = self.outputs[i]
                x, y = limit(gp.cxOnePoint)(self.to_deap(ta[name], i), self.to_deap(tb[name], i))
                ca[name], cb[name] = self.from_deap(x), self.from_deap(y)
        first = ca if self._valid_child(ca, {}) else ta
        second = cb if self._valid_child(cb, {}) else tb
        return self._genome(first), self._genome(second)

    def distance(self, a: dict, b: dict) -> float:
        """Per output, the share of subtrees the two trees do not have in common (a multiset symmetric
        difference over both sizes), summed over the outputs: 0 for equal cells."""
        ta, tb = self._trees(a), self._trees(b)
        total = 0.0
        for name in sorted(set(ta) | set(tb)):
            sa, sb = _subtrees(ta.get(name)), _subtrees(tb.get(name))
            size = sum(sa.values()) + sum(sb.values())
            total += sum(((sa - sb) + (sb - sa)).values()) / size if size else 0.0
        return total


def _leaves(t: Any) -> set[str]:
    if isinstance(t, str):
        return {t}
    if t[0] == "linear" and t[1] == INPUT:
        return {LINEAR_X}
    out: set[str] = set()
    for a in t[1:]:
        out |= _leaves(a)
    return out


def _ops(t: Any) -> set[str]:
    if isinstance(t, str):
        return set()
    out = {t[0]}
    if not (t[0] == "linear" and t[1] == INPUT):
        for a in t[1:]:
            out |= _ops(a)
    return out


def _subtrees(t: Any) -> Counter:
    c: Counter = Counter()
    if t is None:
        return c

    def walk(s):
        c[json.dumps(s, separators=(",", ":"))] += 1
        if isinstance(s, list) and not (s[0] == "linear" and s[1] == INPUT):
            for a in s[1:]:
                walk(a)

    walk(t)
    return c
