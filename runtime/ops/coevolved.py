"""CoDeepNEAT's architecture space (Miikkulainen et al. 2017): layer genes, the `coevolved(...)` genome
distribution, and the `network(...)` architecture its genomes are.

    param arch ~ coevolved(genes = [conv(channels = [4, 32], kernel = [1, 3]), dense(units = [16, 128]),
                                    dropout(rate = [0, 0.5])], module_size = [1, 3], blueprint_size = [1, 4])
    train net = fit(arch, d.train, epochs = 5, validation = d.test)

A genome is a network: a blueprint (a DAG whose nodes are modules) and its modules (small DAGs of
layers), written {"$op": "network", "blueprint": ..., "modules": ...}, so `fit` receives it as if the
user had written `network(...)`. The `codeepneat(...)` strategy (runtime/ops/codeepneat.py) evolves
modules and blueprints as two populations; `random()` draws whole networks. The genome code is in
expc.runtime.genomes.coevolved (pure Python), the torch module in expc.runtime.nets.network.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from expc.runtime.capabilities import Genome
from expc.runtime.ops.nets import Architecture
from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type
from expc.spec.diagnostics import did_you_mean

GENE = value_type("gene", "a layer gene of a coevolved space: conv(...), dense(...), dropout(...)", node=False)

GENES = ("conv", "dense", "dropout")


def _range(v: Any, name: str, lo: float, hi: float, integer: bool) -> list:
    """[a, b] with lo <= a <= b <= hi; a single number stands for [x, x]."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [v, v]
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                         for x in v)):
        raise ValueError(f"{name} is a range [lo, hi], got {v!r}")
    if integer and not all(float(x).is_integer() for x in v):
        raise ValueError(f"{name} takes integers, got {v}")
    a, b = v
    if a > b:
        raise ValueError(f"{name} = [{a}, {b}]: lo must not exceed hi")
    if a < lo or b > hi:
        raise ValueError(f"{name} must lie within [{lo}, {hi}], got [{a}, {b}]")
    return [int(a), int(b)] if integer else [float(a), float(b)]


class ConvGeneParams(Params):
    channels: list[int] = Field([4, 32], description="range [lo, hi] of output channels")
    kernel: list[int] = Field([1, 3], description="range [lo, hi] of the square kernel size (padding keeps the size)")

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, v):
        return _range(v, "channels", 1, 2048, True)

    @field_validator("kernel", mode="before")
    @classmethod
    def _kernel(cls, v):
        return _range(v, "kernel", 1, 15, True)


class DenseGeneParams(Params):
    units: list[int] = Field([16, 128], description="range [lo, hi] of output units")

    @field_validator("units", mode="before")
    @classmethod
    def _units(cls, v):
        return _range(v, "units", 1, 4096, True)


class DropoutGeneParams(Params):
    rate: list[float] = Field([0.0, 0.5], description="range [lo, hi] of the dropout rate")

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, v):
        return _range(v, "rate", 0.0, 0.99, False)


_GENE_PARAMS: dict[str, type[Params]] = {"conv": ConvGeneParams, "dense": DenseGeneParams, "dropout": DropoutGeneParams}


@op("conv", params=ConvGeneParams, returns="gene", inline=True)
def conv(p: ConvGeneParams, ctx=None) -> None:
    """A gene of `coevolved(...)`: a 2-d convolution (relu after it) with channels and kernel size drawn
    from their ranges; the resolution is kept."""


@op("dense", params=DenseGeneParams, returns="gene", inline=True)
def dense(p: DenseGeneParams, ctx=None) -> None:
    """A gene of `coevolved(...)`: a fully connected layer (relu after it) of `units` drawn from the range;
    it flattens an image."""


@op("dropout", params=DropoutGeneParams, returns="gene", inline=True)
def dropout(p: DropoutGeneParams, ctx=None) -> None:
    """A gene of `coevolved(...)`: dropout with its rate drawn from the range."""


def _gene_json(g: Any) -> dict:
    """A gene as {"$op": name, field: [lo, hi], ...}, validated (the JSON form, or a built params model)."""
    if isinstance(g, Params):
        name = next(n for n, cls in _GENE_PARAMS.items() if isinstance(g, cls))
        return {"$op": name, **g.model_dump()}
    if not isinstance(g, dict) or g.get("$op") not in GENES:
        name = g.get("$op") if isinstance(g, dict) else None
        hint = did_you_mean(name, GENES) if isinstance(name, str) else None
        got = f"{name}(...)" if name else repr(g)
        raise ValueError(f"unknown gene {got}" + (f": {hint}" if hint else "") + f" (genes are {', '.join(n + '(...)' for n in GENES)})")
    p = _GENE_PARAMS[g["$op"]].model_validate({k: v for k, v in g.items() if k != "$op"})
    return {"$op": g["$op"], **p.model_dump()}


class CoevolvedParams(Genome):
    genes: list[Input["gene"]] = Field(
        [{"$op": "conv", "channels": [4, 32], "kernel": [1, 3]}, {"$op": "dense", "units": [16, 128]},
         {"$op": "dropout", "rate": [0.0, 0.5]}],
        description="the layer types modules are made of, with their ranges: conv(...), dense(...), dropout(...)")
    module_size: list[int] = Field([1, 3], description="range [lo, hi] of layers in a module")
    blueprint_size: list[int] = Field([1, 4], description="range [lo, hi] of modules (nodes) in a blueprint")

    @field_validator("genes")
    @classmethod
    def _genes(cls, v):
        if not v:
            raise ValueError("genes is empty: give at least one of conv(...), dense(...), dropout(...)")
        seen = [_gene_json(g)["$op"] for g in v]
        twice = sorted({n for n in seen if seen.count(n) > 1})
        if twice:
            raise ValueError(f"gene {twice[0]}(...) is given twice: give one range per layer type")
        return v

    @field_validator("module_size", mode="before")
    @classmethod
    def _module_size(cls, v):
        return _range(v, "module_size", 1, 64, True)

    @field_validator("blueprint_size", mode="before")
    @classmethod
    def _blueprint_size(cls, v):
        return _range(v, "blueprint_size", 1, 64, True)

    def space(self):
        from expc.runtime.genomes.coevolved import Gene, Space

        genes = []
        for g in self.genes:
            j = _gene_json(g)
            genes.append(Gene(j["$op"], {k: tuple(x) for k, x in j.items() if k != "$op"}))
        return Space(tuple(genes), tuple(self.module_size), tuple(self.blueprint_size))

    def value_type(self) -> str:
        return "net"

    def contains(self, value: Any) -> str | None:
        from expc.runtime.genomes import coevolved as G

        if not (isinstance(value, dict) and value.get("$op") == "network"):
            return "is a network(...) genome"
        err = G.check_network(value.get("blueprint"), value.get("modules"))
        return err or G.outside(self.space(), value)

    def default(self) -> dict:
        from expc.runtime.genomes.coevolved import default_network

        return default_network(self.space())

    def sample(self, rng) -> dict:
        from expc.runtime.genomes.coevolved import sample_network

        return sample_network(self.space(), rng)

    def mutate(self, genome: dict, rng) -> dict:
        from expc.runtime.genomes.coevolved import mutate_network

        return mutate_network(self.space(), genome, rng)

    def crossover(self, a: dict, b: dict, rng) -> tuple[dict, dict]:
        from expc.runtime.genomes.coevolved import crossover_network

        space = self.space()
        return crossover_network(space, a, b, rng), crossover_network(space, b, a, rng)

    def distance(self, a: dict, b: dict) -> float:
        from expc.runtime.genomes.coevolved import network_distance

        return network_distance(self.space(), a, b)

    def describe(self, genome: dict) -> list[str]:
        from expc.runtime.genomes.coevolved import describe_network

        return describe_network(genome)


@op("coevolved", params=CoevolvedParams, returns="dist", inline=True)
def coevolved(p: CoevolvedParams, ctx=None) -> None:
    """CoDeepNEAT's architecture space, for `param NAME ~ coevolved(...)`: networks whose blueprint (a
    DAG of `blueprint_size` modules) holds modules (DAGs of `module_size` layers drawn from `genes`).
    Search it with `strategy = codeepneat(...)` (modules and blueprints co-evolve) or any strategy or
    sampler (`random()` draws whole networks). Outside a search the value is one module with each gene
    at the middle of its range, in the given order."""


class NetworkParams(Architecture):
    blueprint: dict = Field(description='{"nodes": [module index, ...], "edges": [[i, j], ...]} with i < j')
    modules: list[dict] = Field(description='modules {"layers": [layer, ...], "edges": [[i, j], ...]}, a layer '
                                '{"type": "conv", "channels", "kernel"}, {"type": "dense", "units"} or '
                                '{"type": "dropout", "rate"}')

    @model_validator(mode="after")
    def _valid(self):
        from expc.runtime.genomes.coevolved import check_network

        err = check_network(self.blueprint, self.modules)
        if err:
            raise ValueError(err)
        return self

    def arch(self, defaults: dict | None = None) -> dict:
        return {"kind": "network", "blueprint": self.blueprint, "modules": self.modules}


@op("network", params=NetworkParams, kinds={"model"}, returns="net", inline=True)
def network(p: NetworkParams, ctx=None) -> NetworkParams:
    """A CoDeepNEAT network (what a `coevolved` genome is): a blueprint DAG of modules, each a small DAG
    of conv, dense and dropout layers, then a linear head `head.*`. A node without incoming edges takes
    the input, the nodes without outgoing edges are merged into the output; images meeting at a node
    are concatenated along channels, an image meeting a vector is flattened first."""
    return p
