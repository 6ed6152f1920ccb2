"""CoDeepNEAT (Miikkulainen et al. 2017, "Evolving deep neural networks") as an ask/tell strategy over
one `coevolved(...)` param. No torch here.

Two populations co-evolve: modules (small DAGs of layers) and blueprints (DAGs whose nodes name module
species). Each generation, `assemblies` networks are assembled, each from a blueprint (the blueprints
are used in turn) whose every node is filled with a random module of the species it names. The
search trains them and tells their fitness (validation accuracy); a blueprint's fitness is the mean
over the networks made from it, a module's the mean over the networks it took part in. A module or
blueprint that took part in none is given its species' mean (the generation's mean for a species
nobody evaluated), and a failed network counts as the generation's worst.

Both populations are speciated NEAT-style by neat-python's DefaultSpeciesSet (its `speciate` only
needs members with a `key` and a `distance(other, config)`, which `_Member` provides; our genomes are
JSON dicts, not neat's genome classes, and neat's reproduction would demand its own genome and config
machinery, so reproduction is written here). The compatibility threshold adapts each generation
towards `module_species` / `blueprint_species` species, and species beyond the target are merged
into the nearest (the smallest first). Offspring are allotted to species in proportion to their adjusted fitness
(neat-python's DefaultReproduction.compute_spawn); within a species the best `elite` share survives
unchanged, the rest are children of the better half: a crossover of two (probability `crossover`) or
a mutated copy of one, then NEAT's structural mutations with probabilities `add_node` and `add_edge`.
The search's other params (a learning rate, ...) are hyperparameters that each blueprint carries and
passes on to its networks, as CoDeepNEAT evolves global hyperparameters with the blueprints.
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any, Callable

from expc.runtime.genomes import coevolved as G
from expc.runtime.search.strategy import Strategy, Told


class _Member:
    """What neat-python's DefaultSpeciesSet speciates: a key and a distance."""

    def __init__(self, key: int, genome: dict, distance: Callable[[dict, dict], float]):
        self.key, self.genome, self._distance = key, genome, distance

    def distance(self, other: "_Member", config: Any) -> float:
        return self._distance(self.genome, other.genome)


class Population:
    """One speciated population: genomes by key, their species, and NEAT-style reproduction."""

    def __init__(self, genomes: list[dict], distance: Callable[[dict, dict], float], target: int, rng: random.Random):
        from neat.reporting import ReporterSet
        from neat.species import DefaultSpeciesSet

        self.distance, self.target, self.rng = distance, target, rng
        self.next_key = 0
        self.genomes: dict[int, dict] = {}
        for g in genomes:
            self.genomes[self._key()] = g
        self.config = SimpleNamespace(compatibility_threshold=self._initial_threshold())
        self.species_set = DefaultSpeciesSet(self.config, ReporterSet())
        self.generation = 0
        self.speciate()

    def _key(self) -> int:
        self.next_key += 1
        return self.next_key - 1

    def _initial_threshold(self) -> float:
        """The distance quantile that would leave about `target` clusters among random genomes."""
        keys = sorted(self.genomes)
        ds = sorted(self.distance(self.genomes[a], self.genomes[b]) for i, a in enumerate(keys) for b in keys[i + 1:])
        if not ds:
            return 1.0
        q = min(len(ds) - 1, int(len(ds) * (1.0 / max(self.target, 1))))
        return max(ds[q], 1e-6)

    def speciate(self) -> None:
        members = {k: _Member(k, g, self.distance) for k, g in self.genomes.items()}
        self.species_set.speciate(SimpleNamespace(genome_config=None), members, self.generation)
        species = self.species_set.species
        # a dynamic compatibility threshold: up when speciation made more species than the target,
        # down when fewer (the excess is merged below; a missing species can only appear later)
        if len(species) != self.target:
            self.config.compatibility_threshold *= 1.1 if len(species) > self.target else 0.9
        while len(species) > self.target:  # merge the smallest species into the nearest other one
            sid = min(species, key=lambda s: (len(species[s].members), -s))
            gone = species.pop(sid)
            for gid, m in sorted(gone.members.items()):
                near = min(species, key=lambda s: (m.distance(species[s].representative, None), s))
                species[near].members[gid] = m
                self.species_set.genome_to_species[gid] = near
        self.generation += 1

    def species(self) -> dict[int, list[int]]:
        """Species id -> member keys (sorted)."""
        return {sid: sorted(s.members) for sid, s in sorted(self.species_set.species.items())}

    def sizes(self) -> list[int]:
        return [len(m) for m in self.species().values()]

    def reproduce(self, fitness: dict[int, float], size: int, elite: float, crossover: float,
                  mutate: Callable[[dict, bool], dict], cross: Callable[[dict, dict], dict]) -> None:
        from neat.reproduction import DefaultReproduction

        rng = self.rng
        species = self.species()
        sids = list(species)
        means = [sum(fitness[k] for k in species[s]) / len(species[s]) for s in sids]
        lo, hi = min(fitness.values()), max(fitness.values())
        adjusted = [(m - lo) / (hi - lo) if hi > lo else 1.0 for m in means]
        spawn = DefaultReproduction.compute_spawn(adjusted, [len(species[s]) for s in sids], size, 1)
        # compute_spawn's total is only about `size`: take from the largest / give to the fittest
        while sum(spawn) > size:
            spawn[max(range(len(spawn)), key=lambda i: (spawn[i], -adjusted[i]))] -= 1
        while sum(spawn) < size:
            spawn[max(range(len(spawn)), key=lambda i: (adjusted[i], -spawn[i]))] += 1
        new: dict[int, dict] = {}
        survivors = {}
        for sid, n in zip(sids, spawn):
            if n <= 0:
                continue
            ranked = sorted(species[sid], key=lambda k: (-fitness[k], k))
            n_elite = min(n, len(ranked), math.ceil(elite * n))
            for k in ranked[:n_elite]:
                new[k] = self.genomes[k]
            parents = ranked[:max(1, math.ceil(len(ranked) / 2))]
            for _ in range(n - n_elite):
                if len(parents) >= 2 and rng.random() < crossover:
                    a, b = sorted(rng.sample(parents, 2), key=lambda k: (-fitness[k], k))
                    child = mutate(cross(self.genomes[a], self.genomes[b]), False)
                else:
                    child = mutate(self.genomes[parents[rng.randrange(len(parents))]], True)
                new[self._key()] = child
            survivors[sid] = self.species_set.species[sid]
        # as neat-python's reproduction does: a species that gets no offspring is gone
        self.species_set.species = survivors
        self.genomes = new
        self.speciate()


class CoDeepNEAT(Strategy):
    """`hyper`: the search's other params (learning rate, ...), carried by each blueprint as its
    "params" (as CoDeepNEAT evolves global hyperparameters with the blueprints) and varied by the
    search's generic operators (expc.runtime.search.genes: DEAP's Gaussian mutation and uniform
    crossover)."""

    def __init__(self, p, name: str, space: G.Space, hyper: dict | None = None):
        from expc.runtime.search.genes import Genes

        self.p, self.name, self.space = p, name, space
        self.hyper = Genes(hyper) if hyper else None
        self.rng = random.Random(p.seed)
        rng = self.rng
        mods = [G.sample_module(space, rng) for _ in range(p.modules)]
        self.modules = Population(mods, lambda a, b: G.module_distance(space, a, b), p.module_species, rng)
        species = list(self.modules.species())
        bps = [G.sample_blueprint(space, species, rng) for _ in range(p.blueprints)]
        if self.hyper is not None:
            for bp in bps:
                bp["params"] = self.hyper.initial(rng, default=False)
        self.blueprints = Population(bps, self._blueprint_distance, p.blueprint_species, rng)
        self.asked: list[tuple[int, list[int]]] = []  # (blueprint key, module key per node) per network
        self.stats: dict[str, Any] = {}
        self.fitness: dict[str, dict[int, float]] = {}

    def ask(self) -> list[dict[str, Any]]:
        rng = self.rng
        species = self.modules.species()
        sids = list(species)
        order = sorted(self.blueprints.genomes)
        rng.shuffle(order)
        self.asked, out = [], []
        for i in range(self.p.assemblies):
            bk = order[i % len(order)]
            bp = self.blueprints.genomes[bk]
            # a node naming a species that died out takes a random living one
            chosen = [rng.choice(species[s if s in species else rng.choice(sids)]) for s in bp["nodes"]]
            self.asked.append((bk, chosen))
            out.append({self.name: G.assemble(bp, [self.modules.genomes[k] for k in chosen]), **bp.get("params", {})})
        return out

    def _blueprint_distance(self, a: dict, b: dict) -> float:
        d = G.blueprint_distance(a, b)
        return d + self.hyper.distance(a["params"], b["params"]) if self.hyper is not None else d

    def _mutate_blueprint(self, g: dict, params: bool, species: list[int]) -> dict:
        """A mutated copy changes a node's species or (with hyperparameters, half the time) those."""
        p, rng = self.p, self.rng
        hyper = self.hyper is not None and params and rng.random() < 0.5
        out = G.mutate_blueprint(self.space, g, species, rng, p.add_node, p.add_edge, params and not hyper)
        if hyper:
            out["params"] = self.hyper.mutate(out["params"], rng)
        return out

    def _crossover_blueprint(self, a: dict, b: dict) -> dict:
        child = G.crossover_blueprint(a, b, self.rng)
        if self.hyper is not None:
            child["params"] = self.hyper.crossover(a["params"], b["params"], self.rng)[0]
        return child

    def tell(self, results: list[Told]) -> None:
        if len(results) != len(self.asked):
            raise ValueError(f"told {len(results)} results for {len(self.asked)} asked networks")
        got = [r.fitness for r in results]
        finite = [f for f in got if f is not None and math.isfinite(f)]
        worst = min(finite) if finite else 0.0
        fit = [f if f is not None and math.isfinite(f) else worst for f in got]
        per_bp: dict[int, list[float]] = {}
        per_mod: dict[int, list[float]] = {}
        for (bk, chosen), f in zip(self.asked, fit):
            per_bp.setdefault(bk, []).append(f)
            for mk in sorted(set(chosen)):
                per_mod.setdefault(mk, []).append(f)
        bp_fit = _fill(self.blueprints, per_bp)
        mod_fit = _fill(self.modules, per_mod)
        self.fitness = {"modules": mod_fit, "blueprints": bp_fit}  # of the generation just told
        self.stats = {
            "species": self.modules.sizes(),
            "module_species": self.modules.sizes(),
            "blueprint_species": self.blueprints.sizes(),
            "modules_used": len(per_mod),
        }
        p, space, rng = self.p, self.space, self.rng
        self.modules.reproduce(
            mod_fit, p.modules, p.elite, p.crossover,
            lambda g, params: G.mutate_module(space, g, rng, p.add_node, p.add_edge, params),
            lambda a, b: G.crossover_module(space, a, b, rng))
        species = list(self.modules.species())
        for k, g in self.blueprints.genomes.items():  # point nodes at living module species
            g["nodes"] = [s if s in species else rng.choice(species) for s in g["nodes"]]
        self.blueprints.reproduce(bp_fit, p.blueprints, p.elite, p.crossover,
                                  lambda g, params: self._mutate_blueprint(g, params, species),
                                  self._crossover_blueprint)
        self.asked = []

    def generation_stats(self) -> dict[str, Any]:
        return dict(self.stats)


def _fill(pop: Population, scores: dict[int, list[float]]) -> dict[int, float]:
    """Mean score per member; a member nobody evaluated gets its species' mean (else the overall mean)."""
    means = {k: sum(v) / len(v) for k, v in scores.items()}
    overall = sum(means.values()) / len(means) if means else 0.0
    out = {}
    for members in pop.species().values():
        known = [means[k] for k in members if k in means]
        fallback = sum(known) / len(known) if known else overall
        for k in members:
            out[k] = means.get(k, fallback)
    return out


def start(p, space: dict) -> CoDeepNEAT:
    """The strategy over a search's params: exactly one coevolved(...) genome; the other searched
    params (numbers, choices) are hyperparameters carried by the blueprints."""
    from expc.runtime.api import OpError
    from expc.runtime.capabilities import Genome
    from expc.runtime.ops.coevolved import CoevolvedParams

    genomes = sorted(n for n, d in space.items() if isinstance(d, CoevolvedParams))
    foreign = sorted(n for n, d in space.items() if isinstance(d, Genome) and n not in genomes)
    if len(genomes) != 1 or foreign:
        what = (f"{', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} another kind of architecture"
                if foreign else "no searched param is coevolved(...)" if not genomes
                else f"{len(genomes)} params are: {', '.join(genomes)}")
        raise OpError(f"codeepneat evolves exactly one coevolved(...) param; {what}", field="strategy",
                      hint="search other architecture spaces with evolution(...) or a sampler")
    (name,) = genomes
    hyper = {n: d for n, d in space.items() if n != name}
    return CoDeepNEAT(p, name, space[name].space(), hyper)
