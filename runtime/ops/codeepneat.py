"""The CoDeepNEAT search strategy (`strategy = codeepneat(...)`), over one `coevolved(...)` param:

    param arch ~ coevolved(genes = [conv(channels = [4, 32], kernel = [1, 3]), dense(units = [16, 128])])
    eval acc = accuracy(fit(arch, d.train, epochs = 5), d.test)
    search evo { objective = maximize(acc), strategy = codeepneat(seed = 1), generations = 10 }

The populations and their reproduction are in expc.runtime.search.codeepneat (pure Python, with
neat-python's speciation)."""

from __future__ import annotations

from pydantic import Field, model_validator

from expc.runtime.registry import op
from expc.runtime.search.strategy import StrategyParams


class CoDeepNeatParams(StrategyParams):
    modules: int = Field(24, ge=2, le=100_000, description="size of the module population")
    blueprints: int = Field(12, ge=1, le=100_000, description="size of the blueprint population")
    assemblies: int = Field(12, ge=1, le=100_000, description="networks assembled and evaluated per generation")
    module_species: int = Field(4, ge=1, description="species of modules the speciation aims at")
    blueprint_species: int = Field(2, ge=1, description="species of blueprints the speciation aims at")
    elite: float = Field(0.25, ge=0.0, le=1.0, description="share of each species kept unchanged")
    crossover: float = Field(0.5, ge=0.0, le=1.0, description="probability that a child has two parents")
    add_node: float = Field(0.1, ge=0.0, le=1.0, description="probability of NEAT's add-node mutation per child")
    add_edge: float = Field(0.1, ge=0.0, le=1.0, description="probability of NEAT's add-edge mutation per child")

    @model_validator(mode="after")
    def _species(self):
        if self.module_species > self.modules:
            raise ValueError(f"module_species = {self.module_species} exceeds modules = {self.modules}")
        if self.blueprint_species > self.blueprints:
            raise ValueError(f"blueprint_species = {self.blueprint_species} exceeds blueprints = {self.blueprints}")
        return self

    def start(self, space):
        from expc.runtime.search.codeepneat import start

        return start(self, space)


@op("codeepneat", params=CoDeepNeatParams, returns="strategy", inline=True)
def codeepneat(p: CoDeepNeatParams, ctx=None) -> None:
    """CoDeepNEAT (Miikkulainen et al. 2017) over one `coevolved(...)` param: a population of modules and
    one of blueprints (graphs whose nodes name module species) co-evolve, both speciated NEAT-style.
    Each generation `assemblies` networks are assembled from a blueprint and modules of the species it
    names and evaluated; a blueprint's fitness is the mean over its networks, a module's the mean over
    the networks it took part in. Within each species the best `elite` share survives; children come
    from crossover (probability `crossover`) or mutation, with NEAT's add-node and add-edge mutations.
    The search's other params (numbers, choices: a learning rate) are carried by the blueprints and
    evolve with them."""
