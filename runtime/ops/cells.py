"""Recurrent cells as trees (the `cell` type), the `cells(...)` space that evolves them, and the
`rnn_lm(...)` architecture that `fit` trains on text:

    param c ~ cells(inputs = ["x", "h", "c"], outputs = ["h", "c"], max_depth = 5, default = lstm_cell())
    train lm = fit(rnn_lm(cell = c, embed = 32, hidden = 64), prose.train, steps = 300)
    eval ppl = perplexity(lm, prose.test)

A cell is a JSON value (expc.runtime.genomes.cell_trees documents the encoding): one expression tree
per state output over the step's input `x`, the previous state and the new values of other outputs;
each `linear` node owns a weight matrix and a bias. `lstm_cell()` and `gru_cell()` are torch's LSTM
and GRU cells written as trees. The GP operators are in expc.runtime.genomes.cells (DEAP), the torch
module in expc.runtime.genomes.cell_module, the language model in expc.runtime.nets.rnn_lm.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from expc.runtime.capabilities import SpaceGenome
from expc.runtime.registry import Input, Params, op
from expc.runtime.types import Shown, value_type


def _cell_summary(v) -> str | None:
    from expc.runtime.genomes.cell_trees import CellError, describe

    try:
        return "; ".join(describe(v)[:-1])
    except (CellError, KeyError, TypeError, IndexError):
        return None


def _cell_show(v) -> Shown | None:
    from expc.runtime.genomes.cell_trees import CellError, describe

    try:
        return Shown(title="cell", lines=tuple(describe(v)))
    except (CellError, KeyError, TypeError, IndexError):
        return None


CELL = value_type("cell", "a recurrent cell as expression trees: cell(trees = {...}), lstm_cell(), gru_cell()",
                  node=False, summary=_cell_summary, show=_cell_show)
RNN = value_type("rnn_lm", "a recurrent language-model architecture, rnn_lm(...), that fit trains on text",
                 node=False, kinds={"model"})


def _checked_cell(v: Any) -> Any:
    """A cell value's JSON checked (a built CellParams passes as it is: it was checked as JSON)."""
    from expc.runtime.genomes.cell_trees import CellError, check_cell

    if isinstance(v, CellParams):
        return v
    try:
        check_cell(v)
    except CellError as e:
        raise ValueError(str(e)) from None
    return v


class CellParams(Params):
    trees: dict[str, Any] = Field(description='{output: tree}: a tree is a leaf ("h", "c", "c\'" = the new c) or '
                                  '[op, args...]; x enters as ["linear", "x"]')
    output: str = Field("h", description="the output the next layer (or the LM head) reads")

    @model_validator(mode="after")
    def _valid(self):
        _checked_cell({"$op": "cell", "trees": self.trees, "output": self.output})
        return self


@op("cell", params=CellParams, returns="cell", inline=True)
def cell(p: CellParams, ctx=None) -> CellParams:
    """A recurrent cell written as expression trees, one per state output (see GRAMMAR.md, "Recurrent
    cells"): ops add, sub, mul, max, blend(g, a, b) = g*a + (1-g)*b, sigmoid, tanh, relu, and
    linear (W·v + b, the learnable part)."""
    return p


class KnownCellParams(Params):
    pass


@op("lstm_cell", params=KnownCellParams, returns="cell", inline=True)
def lstm_cell(p: KnownCellParams, ctx=None) -> CellParams:
    """The LSTM (torch.nn.LSTMCell) as trees: c' = f*c + i*g, h' = o*tanh(c'), each gate from
    W·x + b + W'·h + b'."""
    from expc.runtime.genomes.cell_trees import lstm_trees

    return CellParams(trees=lstm_trees(), output="h")


@op("gru_cell", params=KnownCellParams, returns="cell", inline=True)
def gru_cell(p: KnownCellParams, ctx=None) -> CellParams:
    """The GRU (torch.nn.GRUCell) as a tree: h' = blend(z, h, n) = z*h + (1-z)*n, with
    n = tanh(W·x + b + r*(W'·h + b'))."""
    from expc.runtime.genomes.cell_trees import gru_trees

    return CellParams(trees=gru_trees(), output="h")


# ------------------------------------------------------------------------------------------ the space

OP_NAMES = ("add", "sub", "mul", "max", "blend", "sigmoid", "tanh", "relu", "linear")


# The field `default` (the name) hides Genome.default() on purpose (see Genome.default_genome):
# pydantic's warning about the shadowed attribute is expected here and silenced for this class only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "default"', category=UserWarning)

    class CellsParams(SpaceGenome):
        inputs: list[str] = Field(["x", "h", "c"], min_length=1,
                                  description='what trees read: "x" (the input) and previous states')
        outputs: list[str] = Field(["h", "c"], min_length=1,
                                   description="the state outputs, one tree each; the first is the cell's output, and "
                                   "a tree may read the new value of an output listed after it (h reads c')")
        ops: list[str] = Field(list(OP_NAMES), min_length=1, description=f"the tree ops ({', '.join(OP_NAMES)})")
        max_depth: int = Field(5, ge=1, le=12, description="the height limit of every tree (an LSTM needs 5)")
        default: Input["cell"] = Field({"$op": "lstm_cell"}, validate_default=True,
                                       description="the cell outside a search, and the seed of an evolution")

        @field_validator("inputs", "outputs")
        @classmethod
        def _names(cls, v):
            for s in v:
                if not isinstance(s, str) or not s.isidentifier():
                    raise ValueError(f"{s!r} is not a name")
            if len(set(v)) != len(v):
                raise ValueError(f"a name is listed twice: {v}")
            return v

        @field_validator("ops")
        @classmethod
        def _ops(cls, v):
            from expc.spec.diagnostics import did_you_mean

            for o in v:
                if o not in OP_NAMES:
                    hint = did_you_mean(o, OP_NAMES)
                    known = ", ".join(OP_NAMES)
                    raise ValueError(f"unknown op {o!r}" + (f": {hint}" if hint else "") + f" (one of {known})")
            if "linear" not in v:
                raise ValueError('ops must include "linear": it is how x enters a cell and what it learns')
            return v

        @field_validator("default", mode="before")
        @classmethod
        def _default(cls, v):
            from expc.runtime.genomes.cell_trees import CellError, canonical

            try:
                return canonical(v)
            except CellError as e:
                raise ValueError(str(e)) from None

        @model_validator(mode="after")
        def _consistent(self):
            if "x" not in self.inputs:
                raise ValueError('inputs must include "x", the step\'s input')
            if "x" in self.outputs:
                raise ValueError('"x" is the input, not an output')
            for s in self.inputs:
                if s != "x" and s not in self.outputs:
                    raise ValueError(f"{s!r} is an input but no tree computes it: add it to outputs")
            why = self._space().contains(self.default)
            if why is not None:
                raise ValueError(f"the default cell is not in the space: {why}")
            return self

        def _space(self):
            from expc.runtime.genomes.cells import CellSpace

            return CellSpace(tuple(self.inputs), tuple(self.outputs), tuple(self.ops), int(self.max_depth))

        def value_type(self) -> str:
            return "cell"

        def default_genome(self) -> dict:
            return dict(self.default)

        def describe(self, genome: dict) -> list[str]:
            from expc.runtime.genomes.cell_trees import describe

            return describe(genome)


@op("cells", params=CellsParams, returns="dist", inline=True)
def cells(p: CellsParams, ctx=None) -> None:
    """A space of recurrent cells for `param c ~ cells(...)`: one expression tree per output over
    `inputs` with `ops`, each at most `max_depth` high. Outside a search the param is `default`
    (an LSTM); `evolution(...)` evolves cells by genetic programming (DEAP: subtree mutation, node
    replacement, homologous multiple-tree crossover); an Optuna sampler draws random cells."""


# ------------------------------------------------------------------------------------ the architecture


class RnnLmParams(Params):
    trains_on_text: ClassVar[bool] = True  # fit dispatches on it (runtime/train/fit.py)

    cell: Input["cell"] = Field({"$op": "lstm_cell"}, description="the recurrent cell (a cell value or a cells param)")
    embed: int = Field(32, ge=1, le=4096, description="embedding width")
    hidden: int = Field(64, ge=1, le=4096, description="hidden (state) width")
    layers: int = Field(1, ge=1, le=16, description="stacked cells (layer l+1 reads layer l's output as x)")
    vocab: int = Field(256, ge=256, le=1_000_000, description="vocabulary (byte-level text needs 256)")
    params: int | None = Field(None, ge=1, description="a parameter budget: hidden is set so the network has about "
                               "this many parameters (compare cells at equal size)")
    context: int = Field(64, ge=2, le=100_000, description="tokens per training window (backpropagation through "
                         "time over this many steps, from a zero state)")

    @field_validator("cell", mode="before")
    @classmethod
    def _cell(cls, v):
        return _checked_cell(v)

    def net(self) -> dict:
        """The architecture as stored in config.json ("hidden" resolved from a `params` budget)."""
        from expc.runtime.genomes.cell_trees import canonical, hidden_for

        c = canonical(self.cell)
        hidden = self.hidden
        if self.params is not None:
            hidden = hidden_for(c, self.params, self.embed, self.layers, self.vocab)
        return {"kind": "rnn_lm", "cell": c, "embed": self.embed, "hidden": hidden, "layers": self.layers,
                "vocab": self.vocab, "context": self.context}


@op("rnn_lm", params=RnnLmParams, kinds={"model"}, returns="rnn_lm", inline=True)
def rnn_lm(p: RnnLmParams, ctx=None) -> RnnLmParams:
    """A recurrent language model over bytes: an embedding, `layers` stacked cells, a linear head.
    `fit(rnn_lm(...), TEXT, ...)` trains it on random windows of `context` tokens (next-byte
    cross-entropy, `loss` logged every 10 steps) and returns a model directory; `perplexity(lm,
    TEXT)` and `loss(lm, TEXT)` evaluate it (by default carrying the state through long contiguous
    stretches of the text; give `context` for windows read from a zero state)."""
    return p


# ------------------------------------------------------------------------------------------ behaviour


class ByteLossesParams(Params):
    model: Input["model"] = Field(description="a language model trained by fit(rnn_lm(...), ...)")
    data: Input["data"] = Field(description="a fixed probe text")
    n: int = Field(32, ge=1, le=100_000, description="predictions: the first n bytes after the first")


@op("byte_losses", params=ByteLossesParams, kinds={"eval"}, returns="record", version=1)
def byte_losses(p: ByteLossesParams, ctx) -> dict:
    """The model's next-byte loss (nats) at each of the first `n` predictions of the probe text, read
    from a zero state: {value: [n numbers], mean}. A behaviour for novelty search over cells
    (`novelty(behaviour = ...)` names a measure holding it): two cells that learned the same thing
    lose alike on the same bytes."""
    from expc.runtime.train.rnn_fit import byte_losses as compute

    return compute(p, ctx)
