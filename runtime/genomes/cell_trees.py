"""Recurrent cells as expression trees (Rawal & Miikkulainen, "From nodes to networks"): the JSON
encoding, its validation, the known cells (LSTM, GRU), their formulas and their parameter counts.
Plain Python: no torch, no DEAP (expc.runtime.genomes.cells evolves them, cell_module compiles them).

A cell value is {"$op": "cell", "trees": {OUTPUT: TREE, ...}, "output": "h"}: one tree per state
output, computed at every step from the step's input `x` and the previous state. A TREE is

- a string leaf: "x" (the step's input), a state name ("h", "c": the previous step's value), or a
  state name with a prime ("c'": the value that output's tree computes at this step; no cycles);
- a list [OP, ARG, ...] with OP one of OPS below, e.g. ["mul", ["sigmoid", "h"], ["tanh", "c'"]].

Every node is a vector of the hidden size, except `x`, which enters only through a weighted linear
map, ["linear", "x"] (it has the embedding's size). Each "linear" node owns a weight matrix and a
bias: those are the cell's learnable parameters. The value the next layer (or the LM head) reads is
the output named by "output".
"""

from __future__ import annotations

from typing import Any

INPUT = "x"
# op -> arity; "blend" is g * a + (1 - g) * b (a GRU's update gate interpolation)
OPS: dict[str, int] = {
    "add": 2, "sub": 2, "mul": 2, "max": 2, "blend": 3,
    "sigmoid": 1, "tanh": 1, "relu": 1, "linear": 1,
}
SYMBOLS = {"add": "+", "sub": "-", "mul": "*"}


class CellError(ValueError):
    """A malformed cell value (the message says where: `trees.h`, ...)."""


def prime(name: str) -> str:
    return name + "'"


def is_tree_leaf(t: Any) -> bool:
    return isinstance(t, str)


# ------------------------------------------------------------------------------------- known cells


def _gate(x: Any = INPUT, h: Any = "h") -> list:
    """W·x + b + W'·h + b': one gate's pre-activation, with the two biases torch's cells have."""
    return ["add", ["linear", x], ["linear", h]]


def lstm_trees() -> dict[str, Any]:
    """torch.nn.LSTMCell: c' = f*c + i*g, h' = o*tanh(c') with i, f, o = sigmoid(gate), g = tanh(gate)
    (linear nodes in prefix order: f, i, g in `c` (x then h each), then o in `h`)."""
    i, f, g, o = ["sigmoid", _gate()], ["sigmoid", _gate()], ["tanh", _gate()], ["sigmoid", _gate()]
    return {"c": ["add", ["mul", f, "c"], ["mul", i, g]], "h": ["mul", o, ["tanh", "c'"]]}


def gru_trees() -> dict[str, Any]:
    """torch.nn.GRUCell: r, z = sigmoid(gate), n = tanh(W_in x + b_in + r*(W_hn h + b_hn)),
    h' = z*h + (1-z)*n (linear nodes in prefix order: z.x, z.h, n.x, r.x, r.h, n.h)."""
    r, z = ["sigmoid", _gate()], ["sigmoid", _gate()]
    n = ["tanh", ["add", ["linear", INPUT], ["mul", r, ["linear", "h"]]]]
    return {"h": ["blend", z, "h", n]}


KNOWN: dict[str, Any] = {"lstm_cell": lstm_trees, "gru_cell": gru_trees}


def cell_value(trees: dict[str, Any], output: str = "h") -> dict:
    return {"$op": "cell", "trees": trees, "output": output}


def canonical(value: Any) -> dict:
    """A cell value ({"$op": "cell", ...}, or a known cell {"$op": "lstm_cell"}) as {"$op": "cell",
    "trees", "output"}; a CellParams-like object (the built value) is read through its fields."""
    if hasattr(value, "trees") and hasattr(value, "output"):
        return cell_value(value.trees, value.output)
    if isinstance(value, dict) and value.get("$op") in KNOWN:
        return cell_value(KNOWN[value["$op"]](), "h")
    if isinstance(value, dict) and value.get("$op") == "cell":
        return cell_value(value.get("trees"), value.get("output", "h"))
    raise CellError(f"expected a cell value (cell(...), lstm_cell(), gru_cell()), got {value!r}")


# -------------------------------------------------------------------------------------- validation


def check_tree(t: Any, states: set[str], where: str, ops: set[str] | None = None) -> None:
    """CellError unless `t` is a well-formed tree over `x`, the states and their primes."""
    if isinstance(t, str):
        name = t[:-1] if t.endswith("'") else t
        if t == INPUT:
            raise CellError(f"{where}: x enters a tree only through a linear map: [\"linear\", \"x\"]")
        if name not in states:
            known = ", ".join(sorted(states | {prime(s) for s in states}))
            raise CellError(f"{where}: unknown leaf {t!r} (the leaves are x inside linear, and {known})")
        return
    if not isinstance(t, list) or not t or not isinstance(t[0], str):
        raise CellError(f"{where}: a tree is a leaf name or a list [op, args...], got {t!r}")
    op, args = t[0], t[1:]
    if op not in OPS:
        raise CellError(f"{where}: unknown op {op!r} (one of {', '.join(OPS)})")
    if ops is not None and op not in ops:
        raise CellError(f"{where}: op {op!r} is not among the space's ops ({', '.join(sorted(ops))})")
    if len(args) != OPS[op]:
        raise CellError(f"{where}: {op} takes {OPS[op]} argument{'s' if OPS[op] > 1 else ''}, got {len(args)}")
    if op == "linear" and args[0] == INPUT:
        return
    for k, a in enumerate(args):
        check_tree(a, states, f"{where}.{k + 1}", ops)


def primes_of(t: Any) -> set[str]:
    """The outputs whose new value the tree reads."""
    if isinstance(t, str):
        return {t[:-1]} if t.endswith("'") else set()
    out: set[str] = set()
    for a in t[1:]:
        out |= primes_of(a)
    return out


def order(trees: dict[str, Any]) -> list[str]:
    """The outputs in an order that computes every new value before a tree reads it (ties by name);
    CellError on a cycle."""
    deps = {name: primes_of(t) for name, t in trees.items()}
    done: list[str] = []
    while len(done) < len(trees):
        ready = sorted(n for n in trees if n not in done and deps[n] <= set(done))
        if not ready:
            cycle = sorted(n for n in trees if n not in done)
            raise CellError(f"trees: the new values of {', '.join(cycle)} depend on each other (a cycle)")
        done.append(ready[0])
    return done


def check_cell(value: Any) -> dict:
    """The canonical cell value, or CellError saying what is wrong."""
    cell = canonical(value)
    trees, output = cell["trees"], cell["output"]
    if not isinstance(trees, dict) or not trees:
        raise CellError("trees: expected {output: tree, ...} with at least one output")
    for name in trees:
        if not isinstance(name, str) or not name.isidentifier() or name == INPUT:
            raise CellError(f"trees: {name!r} is not a state name (an identifier other than x)")
    states = set(trees)
    for name, t in trees.items():
        check_tree(t, states, f"trees.{name}")
    order(trees)
    if not any(INPUT in linears(t) for t in trees.values()):
        raise CellError('trees: the cell never reads its input (no ["linear", "x"] in any tree)')
    if output not in trees:
        raise CellError(f"output: {output!r} is not one of the cell's outputs ({', '.join(sorted(trees))})")
    return cell


def height(t: Any) -> int:
    """DEAP's height: a leaf is 0; ["linear", "x"] is one DEAP terminal, so also 0."""
    if isinstance(t, str) or (t[0] == "linear" and t[1] == INPUT):
        return 0
    return 1 + max(height(a) for a in t[1:])


def linears(t: Any) -> list[Any]:
    """The arguments of the tree's linear nodes, in prefix order (a weight per node)."""
    if isinstance(t, str):
        return []
    out = [t[1]] if t[0] == "linear" else []
    if t[0] == "linear" and t[1] == INPUT:
        return out
    for a in t[1:]:
        out += linears(a)
    return out


def n_params(cell: dict, embed: int, hidden: int, layers: int, vocab: int) -> int:
    """Parameters of rnn_lm(cell, embed, hidden, layers, vocab): embedding, cells, head."""
    total = vocab * embed + hidden * vocab + vocab
    for layer in range(layers):
        x_size = embed if layer == 0 else hidden
        for t in cell["trees"].values():
            for arg in linears(t):
                total += (x_size if arg == INPUT else hidden) * hidden + hidden
    return total


def hidden_for(cell: dict, target: int, embed: int, layers: int, vocab: int, hi: int = 4096) -> int:
    """The hidden size whose network comes closest to `target` parameters (the smaller on a tie)."""
    best = 1
    lo_h, hi_h = 1, hi
    while lo_h <= hi_h:  # the count grows with the hidden size: the last size not above target
        mid = (lo_h + hi_h) // 2
        if n_params(cell, embed, mid, layers, vocab) <= target:
            best, lo_h = mid, mid + 1
        else:
            hi_h = mid - 1
    nxt = min(best + 1, hi)
    below, above = n_params(cell, embed, best, layers, vocab), n_params(cell, embed, nxt, layers, vocab)
    return nxt if abs(above - target) < abs(target - below) else best


# ------------------------------------------------------------------------------------------ formulas


def formula(t: Any, counter: list[int], top: bool = True) -> str:
    """Infix text of a tree; W1, W2, ... number the linear maps in reading order."""
    if isinstance(t, str):
        return t
    op, args = t[0], t[1:]
    if op == "linear":
        counter[0] += 1
        k = counter[0]  # prefix order: the map is numbered before the maps inside its argument
        inner = formula(args[0], counter, True)
        return f"W{k}·{inner if isinstance(args[0], str) or args[0][0] not in SYMBOLS else '(' + inner + ')'}"
    if op in SYMBOLS:
        parts = [formula(a, counter, False) for a in args]
        if op == "mul":
            parts = [f"({p})" if isinstance(a, list) and a[0] in ("add", "sub") else p for p, a in zip(parts, args)]
        if op == "sub" and isinstance(args[1], list) and args[1][0] in ("add", "sub"):
            parts[1] = f"({parts[1]})"
        text = f" {SYMBOLS[op]} ".join(parts)
        return text if top or op == "mul" else f"({text})" if op != "add" else text
    return f"{op}({', '.join(formula(a, counter, True) for a in args)})"


def describe(value: Any) -> list[str]:
    """The cell as formulas, one per output in computing order (each W·v includes a bias):

        c' = sigmoid(W1·x + W2·h) * c + sigmoid(W3·x + W4·h) * tanh(W5·x + W6·h)
        h' = sigmoid(W7·x + W8·h) * tanh(c')
    """
    cell = canonical(value)
    counter = [0]
    lines = [f"{name}' = {formula(cell['trees'][name], counter)}" for name in order(cell["trees"])]
    out = f"output {cell['output']}; {counter[0]} linear map{'s' if counter[0] != 1 else ''} (W·v + b)"
    return lines + [out]
