"""Data sources (kind `data`): text files, JSON lines, CSV, a generated arithmetic set, and the
combinators mix / split / take. Every source's result is a `TextData`: examples stored as JSON lines.
The combinators also take array data (`tensors`, runtime/ops/tensors.py) and keep the type of what they
combine: they dispatch on the input's artifact class.

How examples become training windows (identical in `finetune`, `loss` and `perplexity`): see
expc.runtime.train.tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from expc.runtime.api import OpError, node_seed
from expc.runtime.data.arrays import TensorData
from expc.runtime.data.values import TextData
from expc.runtime.registry import FilePath, Input, Params, Variadic, op
from expc.runtime.types import value_type

def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes} bytes"


def _data_summary(v) -> str | None:
    """`n=3,000 examples, 41.2 kB` (where it came from is in `source`, often too long for a line)."""
    if not isinstance(getattr(v, "n", None), int):
        return None
    return f"n={v.n:,} examples, {_size(getattr(v, 'n_bytes', 0))}"


def _split_summary(v) -> str | None:
    """`train n=2,700, test n=300 examples`."""
    if not isinstance(v, dict) or not all(isinstance(getattr(x, "n", None), int) for x in v.values()):
        return None
    return ", ".join(f"{k} n={x.n:,}" for k, x in v.items()) + " examples"


DATA = value_type("data", "a dataset of examples", kinds={"data"}, artifact=TextData, summary=_data_summary)
SPLIT = value_type("split", "a train/test split of a dataset (members .train, .test, of the split's type)",
                   params=("T",), members={"train": "T", "test": "T"}, kinds={"data"}, summary=_split_summary)


def _name(path: str) -> str:
    return Path(path).name


class TextParams(Params):
    path: FilePath = Field(description="a UTF-8 text file")
    chunk: Literal["line", "paragraph", "file"] = Field(
        "line", description='one example per non-blank "line", per blank-line-separated "paragraph", or the whole "file"'
    )


@op("text", params=TextParams, kinds={"data"}, returns="data", version=1)
def text(p: TextParams, ctx) -> TextData:
    """Examples from a text file: one per line (default), per paragraph, or the whole file."""
    from expc.runtime.data.sources import read_text

    return TextData.write(ctx.out_dir, read_text(p.path, p.chunk), f"text({_name(p.path)}, chunk={p.chunk})")


class JsonlParams(Params):
    path: FilePath = Field(description="a JSON-lines file: one JSON object per line")
    field: str = Field("text", description="the string field of each object that holds the example")


@op("jsonl", params=JsonlParams, kinds={"data"}, returns="data", version=1)
def jsonl(p: JsonlParams, ctx) -> TextData:
    """Examples from the string field `field` of each line of a JSON-lines file."""
    from expc.runtime.data.sources import read_jsonl

    return TextData.write(ctx.out_dir, read_jsonl(p.path, p.field), f"jsonl({_name(p.path)}, field={p.field})")


class CsvParams(Params):
    path: FilePath = Field(description="a CSV file with a header row")
    column: str = Field("text", description="the column that holds the example")


@op("csv", params=CsvParams, kinds={"data"}, returns="data", version=1)
def csv(p: CsvParams, ctx) -> TextData:
    """Examples from one column of a CSV file (blank cells are skipped)."""
    from expc.runtime.data.sources import read_csv

    return TextData.write(ctx.out_dir, read_csv(p.path, p.column), f"csv({_name(p.path)}, column={p.column})")


class ArithmeticParams(Params):
    n: int = Field(2000, ge=1, le=10_000_000, description="number of examples")
    digits: int = Field(3, ge=1, le=18, description="maximum number of digits of each operand")
    seed: int = Field(0, description="generator seed")
    ops: str = Field("+", min_length=1, pattern=r"^[+\-*]+$", description='operators to draw from, e.g. "+-*"')


@op("arithmetic", params=ArithmeticParams, kinds={"data"}, returns="data", version=1)
def arithmetic(p: ArithmeticParams, ctx) -> TextData:
    """Generated arithmetic, one problem per example: `123+45=168`."""
    from expc.runtime.data.sources import arithmetic as generate

    return TextData.write(
        ctx.out_dir, generate(p.n, p.digits, node_seed(p.seed, ctx.seed), p.ops), f"arithmetic(n={p.n}, digits={p.digits}, ops={p.ops})"
    )


class MixParams(Params):
    sources: Annotated[list[Input["data", "tensors"]], Variadic()] = Field(
        min_length=1, description="the datasets to mix, all text or all tensors of one feature shape")
    weights: list[float] | None = Field(None, description="relative share of each source (default: all examples once)")
    n: int | None = Field(None, ge=1, description="size of a weighted mixture, in `unit`s (default: all sources' total)")
    unit: Literal["examples", "bytes"] = Field("examples", description='what the weights and n count ("bytes": text only)')
    seed: int = Field(0, description="shuffling seed")


@op("mix", params=MixParams, kinds={"data"}, returns="{sources}", version=1)
def mix(p: MixParams, ctx) -> TextData | TensorData:
    """A shuffled mixture of datasets: text, or tensors of one feature shape.
    With `weights`, source i makes up a share wᵢ/Σw of the mixture, counted in examples or in bytes
    (`unit`, text only), sampled from a seeded permutation of it (repeating examples of a source that
    is too small)."""
    from expc.runtime.data.sources import mix as mix_examples

    if p.weights is not None:
        if len(p.weights) != len(p.sources):
            raise OpError(f"{len(p.weights)} weights for {len(p.sources)} sources", field="weights")
        if any(w < 0 for w in p.weights) or sum(p.weights) <= 0:
            raise OpError("weights must be >= 0 and not all 0", field="weights")
    elif p.n is not None:
        raise OpError("n applies to a weighted mix only", field="n", hint="give weights = [...] too")
    if any(isinstance(d, TensorData) for d in p.sources):
        from expc.runtime.data.array_sources import mix_tensors

        return mix_tensors(p.sources, p.weights, p.n, node_seed(p.seed, ctx.seed), p.unit, ctx.out_dir)
    examples = mix_examples([d.examples() for d in p.sources], p.weights, p.n, node_seed(p.seed, ctx.seed), p.unit)
    if not examples:
        raise OpError("empty mixture: every weighted share rounds to 0 examples", field="weights")
    parts = ", ".join(d.source for d in p.sources)
    if p.weights is not None:
        parts += ", weights=[" + ", ".join(f"{w:g}" for w in p.weights) + f"], unit={p.unit}"
    return TextData.write(ctx.out_dir, examples, f"mix({parts})")


class SplitParams(Params):
    data: Input["data", "tensors"] = Field(description="the dataset to split")
    test: float = Field(0.1, gt=0, description="held-out share in (0, 1), or a number of examples if >= 1")
    seed: int = Field(0, description="shuffling seed")

    @field_validator("test")
    @classmethod
    def _share_or_count(cls, v: float) -> float:
        # checked here rather than in the operator, so `expc check` reports it at the argument
        if v >= 1 and v != int(v):
            raise ValueError(f"a share must be below 1 and a count of examples a whole number (got {v:g})")
        return v


@op("split", params=SplitParams, kinds={"data"}, returns="split[{data}]", version=1)
def split(p: SplitParams, ctx) -> dict:
    """A seeded random train/test split; members `.train` and `.test` (both keep the original order).
    Tensors are split stratified: each class is held out in proportion to its size."""
    from expc.runtime.data.sources import split as split_examples

    desc = f"split({p.data.source}, test={p.test:g}, seed={p.seed})"
    if isinstance(p.data, TensorData):
        from expc.runtime.data.array_sources import split_tensors

        return split_tensors(p.data, p.test, node_seed(p.seed, ctx.seed), ctx.out_dir, desc)
    train, held = split_examples(p.data.examples(), p.test, node_seed(p.seed, ctx.seed))
    return {
        "train": TextData.write(ctx.out_dir, train, desc + ".train", file="train.jsonl"),
        "test": TextData.write(ctx.out_dir, held, desc + ".test", file="test.jsonl"),
    }


class TakeParams(Params):
    data: Input["data", "tensors"] = Field(description="the dataset")
    n: int = Field(ge=1, description="number of examples to keep")


@op("take", params=TakeParams, kinds={"data"}, returns="{data}", version=1)
def take(p: TakeParams, ctx) -> TextData | TensorData:
    """The first n examples of a dataset (all of them, with a warning, if it has fewer)."""
    if isinstance(p.data, TensorData):
        from expc.runtime.data.array_sources import take_tensors

        if p.n > p.data.n:
            ctx.warn(f"take: the dataset has only {p.data.n} examples, fewer than n = {p.n}", field="n")
        return take_tensors(p.data, p.n, ctx.out_dir)
    examples = p.data.examples()
    if p.n > len(examples):
        ctx.warn(f"take: the dataset has only {len(examples)} examples, fewer than n = {p.n}", field="n")
    return TextData.write(ctx.out_dir, examples[: p.n], f"take({p.data.source}, {p.n})")
