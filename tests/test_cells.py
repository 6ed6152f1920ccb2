"""Recurrent cells as trees: lstm_cell() and gru_cell() compute exactly what torch's cells compute,
the GP operators (DEAP) always give valid genomes and are deterministic in their seed, the formulas,
and the located diagnostics of the family."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from expc.interpreter.compiler import compile
from expc.runtime.genomes.cell_module import CellModule
from expc.runtime.genomes.cell_trees import (CellError, canonical, cell_value, check_cell, describe, gru_trees,
                                             hidden_for, lstm_trees, n_params)
from expc.runtime.ops.cells import CellsParams
from expc.spec.diagnostics import CompileError

# torch's gate order in weight_ih / weight_hh: LSTM i, f, g, o; GRU r, z, n
LSTM_NODES = [("c", "f", "x"), ("c", "f", "h"), ("c", "i", "x"), ("c", "i", "h"), ("c", "g", "x"), ("c", "g", "h"),
              ("h", "o", "x"), ("h", "o", "h")]
GRU_NODES = [("h", "z", "x"), ("h", "z", "h"), ("h", "n", "x"), ("h", "r", "x"), ("h", "r", "h"), ("h", "n", "h")]


def _copy_weights(module: CellModule, ref, nodes, gates: str) -> None:
    """The torch cell's weights into the tree's linear nodes (per output, in prefix order)."""
    chunks = {src: (getattr(ref, f"weight_{src}").detach().chunk(len(gates)),
                    getattr(ref, f"bias_{src}").detach().chunk(len(gates))) for src in ("ih", "hh")}
    seen: dict[str, int] = {}
    with torch.no_grad():
        for out, gate, src in nodes:
            k = seen.get(out, 0)
            seen[out] = k + 1
            w, b = chunks["ih" if src == "x" else "hh"]
            module.trees[out][k].weight.copy_(w[gates.index(gate)])
            module.trees[out][k].bias.copy_(b[gates.index(gate)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lstm_cell_is_torch_lstm_cell(seed):
    torch.manual_seed(seed)
    E, H, B, T = 6, 9, 5, 12
    ref = torch.nn.LSTMCell(E, H)
    m = CellModule(cell_value(lstm_trees()), E, H)
    _copy_weights(m, ref, LSTM_NODES, "ifgo")
    xs, h, c = torch.randn(T, B, E), torch.randn(B, H), torch.randn(B, H)
    out, state = m(xs, {"h": h, "c": c})
    err = 0.0
    for t in range(T):
        h, c = ref(xs[t], (h, c))
        err = max(err, (out[t] - h).abs().max().item())
    err = max(err, (state["c"] - c).abs().max().item())
    assert err < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gru_cell_is_torch_gru_cell(seed):
    torch.manual_seed(seed)
    E, H, B, T = 6, 9, 5, 12
    ref = torch.nn.GRUCell(E, H)
    m = CellModule(cell_value(gru_trees()), E, H)
    _copy_weights(m, ref, GRU_NODES, "rzn")
    xs, h = torch.randn(T, B, E), torch.randn(B, H)
    out, _ = m(xs, {"h": h})
    err = 0.0
    for t in range(T):
        h = ref(xs[t], h)
        err = max(err, (out[t] - h).abs().max().item())
    assert err < 1e-6


def test_the_known_cells_as_formulas():
    assert describe({"$op": "lstm_cell"}) == [
        "c' = sigmoid(W1·x + W2·h) * c + sigmoid(W3·x + W4·h) * tanh(W5·x + W6·h)",
        "h' = sigmoid(W7·x + W8·h) * tanh(c')",
        "output h; 8 linear maps (W·v + b)",
    ]
    assert describe({"$op": "gru_cell"})[0] == \
        "h' = blend(sigmoid(W1·x + W2·h), h, tanh(W3·x + sigmoid(W4·x + W5·h) * W6·h))"


def test_a_parameter_budget_sets_the_hidden_size():
    lstm, gru = check_cell({"$op": "lstm_cell"}), check_cell({"$op": "gru_cell"})
    # 8 maps of x (E*H + H) or h (H*H + H), the embedding and the head
    assert n_params(lstm, 32, 64, 1, 256) == 256 * 32 + 4 * (32 * 64 + 64) + 4 * (64 * 64 + 64) + 64 * 256 + 256
    hl, hg = hidden_for(lstm, 50_000, 32, 1, 256), hidden_for(gru, 50_000, 32, 1, 256)
    assert hg > hl  # a GRU has 3 gates to the LSTM's 4: more hidden units for the same budget
    for cell, h in ((lstm, hl), (gru, hg)):
        step = n_params(cell, 32, h + 1, 1, 256) - n_params(cell, 32, h, 1, 256)
        assert abs(n_params(cell, 32, h, 1, 256) - 50_000) <= step


# ------------------------------------------------------------------------------------------ the GP


SPACES = {
    "lstm": CellsParams.model_validate({}),
    "one_state": CellsParams.model_validate({"inputs": ["x", "h"], "outputs": ["h"], "ops": ["add", "mul", "tanh",
                                             "linear"], "max_depth": 3,
                                             "default": {"$op": "cell", "trees": {"h": ["tanh", ["linear", "x"]]}}}),
    "three_states": CellsParams.model_validate({"inputs": ["x", "h", "c", "m"], "outputs": ["h", "c", "m"],
                                                "max_depth": 4, "default": {"$op": "cell", "output": "h", "trees": {
                                                    "h": ["tanh", ["add", ["linear", "x"], "c'"]],
                                                    "c": ["mul", "m'", "c"], "m": ["sigmoid", ["linear", "h"]]}}}),
}


@settings(max_examples=40, deadline=None)
@given(space=st.sampled_from(sorted(SPACES)), seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 6))
def test_sampling_mutation_and_crossover_always_give_valid_cells(space, seed, steps):
    p = SPACES[space]
    rng = random.Random(seed)
    a, b = p.default_genome(), p.sample(rng)
    assert p.contains(a) is None and p.contains(b) is None, p.contains(b)
    for _ in range(steps):
        a = p.mutate(a, rng)
        assert p.contains(a) is None, p.contains(a)
        a, b = p.crossover(a, b, rng)
        assert p.contains(a) is None and p.contains(b) is None, (p.contains(a), p.contains(b))
        CellModule(a, 4, 3)(torch.randn(2, 2, 4))  # and each compiles and runs


def test_the_same_seed_gives_the_same_genomes():
    p = SPACES["lstm"]

    def run(seed):
        rng = random.Random(seed)
        pop = [p.default_genome()] + [p.sample(rng) for _ in range(5)]
        for i in range(10):
            child = p.mutate(pop[i % len(pop)], rng)
            c1, c2 = p.crossover(child, pop[(i + 1) % len(pop)], rng)
            pop += [child, c1, c2]
        return pop

    assert run(3) == run(3)
    assert run(3) != run(4)
    # the caller's global random state is left alone
    random.seed(7)
    before = random.random()
    random.seed(7)
    run(5)
    assert random.random() == before


def test_mutation_changes_one_tree_and_distance_sees_it():
    p = SPACES["lstm"]
    lstm = p.default_genome()
    child = p.mutate(lstm, random.Random(0))
    assert child != lstm and p.distance(lstm, lstm) == 0.0 and p.distance(lstm, child) > 0
    assert sum(child["trees"][k] != lstm["trees"][k] for k in ("h", "c")) == 1


def test_the_json_tree_survives_deap():
    space = SPACES["lstm"]._space()
    for i, name in enumerate(space.outputs):
        tree = lstm_trees()[name]
        assert space.from_deap(space.to_deap(tree, i)) == tree


# ---------------------------------------------------------------------------------------- diagnostics


@pytest.mark.parametrize("bad, message", [
    ({"h": "x"}, "x enters a tree only through a linear map"),
    ({"h": ["tanh", "q"]}, "unknown leaf 'q'"),
    ({"h": ["mul", ["linear", "x"]]}, "trees.h: mul takes 2 arguments, got 1"),
    ({"h": ["add", ["linear", "x"], "c'"], "c": ["tanh", "h'"]}, "depend on each other (a cycle)"),
    ({"h": ["tanh", "h"]}, "the cell never reads its input"),
])
def test_malformed_cells(bad, message):
    with pytest.raises(CellError, match=None) as err:
        check_cell({"$op": "cell", "trees": bad})
    assert message in str(err.value)


def _diagnostics(tmp_path, text: str):
    path = tmp_path / "t.exp"
    path.write_text(text)
    with pytest.raises(CompileError) as info:
        compile(path)
    return [(d.span.line, d.message) for d in info.value.diagnostics]


def test_check_time_diagnostics(tmp_path):
    (line, msg), = _diagnostics(tmp_path, 'param c ~ cells(outputs = ["h", "c"], default = gru_cell())\n')
    assert line == 1 and "the default cell is not in the space: has outputs ['h'], the space ['h', 'c']" in msg
    (_, msg), = _diagnostics(tmp_path, 'param c ~ cells(ops = ["add", "tanhh", "linear"])\n')
    assert "unknown op 'tanhh'" in msg and "did you mean 'tanh'" in msg
    (_, msg), = _diagnostics(tmp_path, 'model m = rnn_lm(cell = cell(trees = {h: ["tanh", "h"]}))\n')
    assert "the cell never reads its input" in msg
    (_, msg), = _diagnostics(tmp_path, 'param c ~ cells(inputs = ["x", "h", "m"])\n')
    assert "'m' is an input but no tree computes it" in msg


def test_a_cells_program_checks(tmp_path):
    path = tmp_path / "t.exp"
    path.write_text('param c ~ cells(inputs = ["x", "h", "c"], outputs = ["h", "c"], max_depth = 5, '
                    'default = lstm_cell())\n'
                    'data d = text("corpus.txt")\n'
                    'train lm = fit(rnn_lm(cell = c, embed = 32, hidden = 64, layers = 1, vocab = 256), d, steps = 5)\n'
                    'eval ppl = perplexity(lm, d)\n')
    (tmp_path / "corpus.txt").write_text("hello world\n")
    program = compile(path).program
    assert program.params["c"].type == "cell"
    assert canonical(program.params["c"].default)["trees"] == lstm_trees()


def test_an_exploding_cell_stays_finite():
    cell = {"$op": "cell", "trees": {"h": ["add", ["mul", "h", "h"], ["linear", "x"]]}}
    out, state = CellModule(cell, 3, 4)(torch.full((40, 2, 3), 5.0), {"h": torch.full((2, 4), 3.0)})
    assert torch.isfinite(out).all() and out.abs().max() == 1000.0
