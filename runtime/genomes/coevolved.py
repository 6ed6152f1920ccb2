"""CoDeepNEAT's genomes as JSON (Miikkulainen et al. 2017): layers, modules, blueprints, and the
networks assembled from them. No torch here: runtime/nets/network.py builds a network.

- A layer is {"type": "conv", "channels": C, "kernel": K}, {"type": "dense", "units": U} or
  {"type": "dropout", "rate": R}.
- A module is a small DAG of layers {"layers": [...], "edges": [[i, j], ...]}; a blueprint a DAG of
  nodes {"nodes": [species, ...], "edges": [...]} whose nodes name module species. In both, the list
  order is a topological order (every edge [i, j] has i < j), so no mutation can make a cycle; a
  node without incoming edges takes the graph's input and the outputs of the nodes without outgoing
  edges are merged into the graph's output.
- A network (the genome of a `coevolved` param, an inline `network(...)` value) is a blueprint whose
  nodes index its list of modules: {"$op": "network", "blueprint": {"nodes": [0, 1], "edges": [[0, 1]]},
  "modules": [module, ...]}.

Genes are aligned by position (the topological order) for crossover and distance, rather than by
NEAT's innovation numbers: CoDeepNEAT's initial modules are random graphs that share no innovation
history, so innovation alignment would call every pair of them fully disjoint.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

# the fields of each layer type: (name, kind); widths are drawn on a log scale
LAYER_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "conv": (("channels", "width"), ("kernel", "int")),
    "dense": (("units", "width"),),
    "dropout": (("rate", "float"),),
}
LAYER_LIMITS = {"channels": (1, 2048), "kernel": (1, 15), "units": (1, 4096), "rate": (0.0, 0.99)}


@dataclass(frozen=True)
class Gene:
    """A layer type and the ranges of its fields ({"channels": (4, 32), "kernel": (1, 3)})."""

    type: str
    ranges: dict[str, tuple[float, float]]

    def mid(self) -> dict:
        """The layer at the middle of every range (the geometric middle of a width)."""
        out: dict[str, Any] = {"type": self.type}
        for name, kind in LAYER_FIELDS[self.type]:
            lo, hi = self.ranges[name]
            if kind == "float":
                out[name] = round((lo + hi) / 2, 3)
            else:
                out[name] = int(round(math.sqrt(lo * hi) if kind == "width" else (lo + hi) / 2))
        return out


@dataclass(frozen=True)
class Space:
    """What a `coevolved(...)` param draws from."""

    genes: tuple[Gene, ...]
    module_size: tuple[int, int]
    blueprint_size: tuple[int, int]

    def gene(self, type_: str) -> Gene | None:
        return next((g for g in self.genes if g.type == type_), None)


# ------------------------------------------------------------------------------------------------ layers


def _draw(kind: str, lo: float, hi: float, rng) -> float | int:
    if kind == "float":
        return round(rng.uniform(lo, hi), 3)
    if kind == "width":
        return int(min(hi, max(lo, round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))))
    return rng.randint(int(lo), int(hi))


def sample_layer(space: Space, rng) -> dict:
    gene = space.genes[rng.randrange(len(space.genes))]
    out: dict[str, Any] = {"type": gene.type}
    for name, kind in LAYER_FIELDS[gene.type]:
        out[name] = _draw(kind, *gene.ranges[name], rng)
    return out


def mutate_layer(space: Space, layer: dict, rng) -> dict:
    """One field perturbed (widths by a log-normal factor, kernels by one, rates by a Gaussian step);
    with probability 0.2 (or when its type left the space) a fresh layer of any type."""
    gene = space.gene(layer["type"])
    if gene is None or rng.random() < 0.2:
        return sample_layer(space, rng)
    free = [(n, k) for n, k in LAYER_FIELDS[gene.type] if gene.ranges[n][0] < gene.ranges[n][1]]
    if not free:
        return sample_layer(space, rng)
    out = dict(layer)
    name, kind = free[rng.randrange(len(free))]
    lo, hi = gene.ranges[name]
    x = out[name]
    if kind == "width":
        y = int(round(x * math.exp(rng.gauss(0.0, 0.4))))
        out[name] = int(min(hi, max(lo, y if y != x else x + rng.choice((-1, 1)))))
    elif kind == "int":
        out[name] = int(min(hi, max(lo, x + rng.choice((-1, 1)))))
    else:
        out[name] = round(min(hi, max(lo, x + rng.gauss(0.0, 0.1 * (hi - lo) or 0.05))), 3)
    return out


def layer_difference(space: Space, a: dict, b: dict) -> float:
    """0 for equal layers, 1 for layers of different types, the mean normalized field gap otherwise."""
    if a["type"] != b["type"]:
        return 1.0
    gene = space.gene(a["type"])
    gaps = []
    for name, kind in LAYER_FIELDS[a["type"]]:
        lo, hi = gene.ranges[name] if gene else LAYER_LIMITS[name]
        if kind == "width":
            lo, hi, x, y = math.log(lo), math.log(hi), math.log(a[name]), math.log(b[name])
        else:
            x, y = a[name], b[name]
        gaps.append(min(1.0, abs(x - y) / (hi - lo)) if hi > lo else float(x != y))
    return sum(gaps) / len(gaps)


# ------------------------------------------------------------------------------------------------ graphs
# A graph is {key: [payload, ...], "edges": [[i, j], ...]} with i < j: a module (key "layers") or a
# blueprint (key "nodes").


def _random_edges(n: int, rng) -> list[list[int]]:
    """Most nodes get one incoming edge from an earlier node (some start a parallel branch)."""
    return [[rng.randrange(j), j] for j in range(1, n) if rng.random() < 0.8]


def insert_node(graph: dict, key: str, payload: Any, rng) -> None:
    """NEAT's add-node: split a random edge [a, b] into [a, new], [new, b]; with no edge, put the node
    at a random place in the order, chained to its neighbours."""
    nodes, edges = graph[key], graph["edges"]
    if edges:
        a, b = edges[rng.randrange(len(edges))]
        shifted = [[i + (i >= b), j + (j >= b)] for i, j in edges if [i, j] != [a, b]]
        nodes.insert(b, payload)
        graph["edges"] = sorted(shifted + [[a, b], [b, b + 1]])
        return
    pos = rng.randint(0, len(nodes))
    nodes.insert(pos, payload)
    graph["edges"] = sorted(([[pos - 1, pos]] if pos > 0 else []) + ([[pos, pos + 1]] if pos + 1 < len(nodes) else []))


def insert_edge(graph: dict, key: str, rng) -> bool:
    """NEAT's add-edge: a new edge [i, j], i < j (so the graph stays acyclic); False when complete."""
    n, have = len(graph[key]), {tuple(e) for e in graph["edges"]}
    free = [[i, j] for i in range(n) for j in range(i + 1, n) if (i, j) not in have]
    if not free:
        return False
    graph["edges"] = sorted(graph["edges"] + [free[rng.randrange(len(free))]])
    return True


def graph_crossover(fitter: dict, other: dict, key: str, compatible, rng) -> dict:
    """NEAT's crossover: the structure (nodes and edges) of the fitter parent; each aligned node's
    payload from either parent at random when the two are compatible."""
    child = copy.deepcopy(fitter)
    for i in range(min(len(fitter[key]), len(other[key]))):
        if compatible(fitter[key][i], other[key][i]) and rng.random() < 0.5:
            child[key][i] = copy.deepcopy(other[key][i])
    return child


def graph_distance(a: dict, b: dict, key: str, difference) -> float:
    """NEAT's compatibility distance with positional alignment: (payload differences of aligned
    nodes + unaligned nodes + half the edges in one graph only) / the larger node count."""
    na, nb = len(a[key]), len(b[key])
    n = max(na, nb, 1)
    nodes = sum(difference(x, y) for x, y in zip(a[key], b[key])) + abs(na - nb)
    edges = len({tuple(e) for e in a["edges"]} ^ {tuple(e) for e in b["edges"]})
    return (nodes + 0.5 * edges) / n


def sources_and_sinks(n: int, edges: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """The predecessors of each node (empty: it takes the graph's input) and the sink nodes."""
    preds: list[list[int]] = [[] for _ in range(n)]
    has_out = [False] * n
    for i, j in edges:
        preds[j].append(i)
        has_out[i] = True
    return preds, [i for i in range(n) if not has_out[i]]


# ----------------------------------------------------------------------------------------------- modules


def sample_module(space: Space, rng) -> dict:
    n = rng.randint(*space.module_size)
    return {"layers": [sample_layer(space, rng) for _ in range(n)], "edges": _random_edges(n, rng)}


def mutate_module(space: Space, module: dict, rng, add_node: float = 0.0, add_edge: float = 0.0,
                  params: bool = True) -> dict:
    """A layer's fields perturbed (when `params`), then a new layer with probability `add_node`
    (within module_size) and a new edge with probability `add_edge`."""
    out = copy.deepcopy(module)
    if params and out["layers"]:
        i = rng.randrange(len(out["layers"]))
        out["layers"][i] = mutate_layer(space, out["layers"][i], rng)
    if rng.random() < add_node and len(out["layers"]) < space.module_size[1]:
        insert_node(out, "layers", sample_layer(space, rng), rng)
    if rng.random() < add_edge:
        insert_edge(out, "layers", rng)
    return out


def crossover_module(space: Space, fitter: dict, other: dict, rng) -> dict:
    return graph_crossover(fitter, other, "layers", lambda x, y: x["type"] == y["type"], rng)


def module_distance(space: Space, a: dict, b: dict) -> float:
    return graph_distance(a, b, "layers", lambda x, y: layer_difference(space, x, y))


# -------------------------------------------------------------------------------------------- blueprints


def sample_blueprint(space: Space, species: list[int], rng) -> dict:
    n = rng.randint(*space.blueprint_size)
    return {"nodes": [rng.choice(species) for _ in range(n)], "edges": _random_edges(n, rng)}


def mutate_blueprint(space: Space, blueprint: dict, species: list[int], rng, add_node: float = 0.0,
                     add_edge: float = 0.0, params: bool = True) -> dict:
    """A node's species redrawn (when `params`), then a new node with probability `add_node` (within
    blueprint_size) and a new edge with probability `add_edge`."""
    out = copy.deepcopy(blueprint)
    if params and out["nodes"]:
        out["nodes"][rng.randrange(len(out["nodes"]))] = rng.choice(species)
    if rng.random() < add_node and len(out["nodes"]) < space.blueprint_size[1]:
        insert_node(out, "nodes", rng.choice(species), rng)
    if rng.random() < add_edge:
        insert_edge(out, "nodes", rng)
    return out


def crossover_blueprint(fitter: dict, other: dict, rng) -> dict:
    return graph_crossover(fitter, other, "nodes", lambda x, y: True, rng)


def blueprint_distance(a: dict, b: dict) -> float:
    return graph_distance(a, b, "nodes", lambda x, y: float(x != y))


# ---------------------------------------------------------------------------------------------- networks


def assemble(blueprint: dict, modules: list[dict]) -> dict:
    """The network of a blueprint whose i-th node is filled with modules[i] (equal modules stored once)."""
    distinct: list[dict] = []
    nodes = []
    for m in modules:
        if m not in distinct:
            distinct.append(m)
        nodes.append(distinct.index(m))
    return {"$op": "network", "blueprint": {"nodes": nodes, "edges": copy.deepcopy(blueprint["edges"])},
            "modules": copy.deepcopy(distinct)}


def default_network(space: Space) -> dict:
    """One module: the genes in their given order at the middle of their ranges, chained."""
    lo, hi = space.module_size
    n = min(hi, max(lo, len(space.genes)))
    layers = [space.genes[i % len(space.genes)].mid() for i in range(n)]
    module = {"layers": layers, "edges": [[i, i + 1] for i in range(n - 1)]}
    return assemble({"nodes": [0], "edges": []}, [module])


def sample_network(space: Space, rng) -> dict:
    """A random blueprint filled with random modules (one per node): random search's draw."""
    blueprint = sample_blueprint(space, [0], rng)
    return assemble(blueprint, [sample_module(space, rng) for _ in blueprint["nodes"]])


def _compact(net: dict) -> dict:
    """Drop modules no node uses (after a mutation or crossover) and renumber."""
    used = sorted(set(net["blueprint"]["nodes"]))
    return {"$op": "network", "blueprint": {"nodes": [used.index(i) for i in net["blueprint"]["nodes"]],
                                            "edges": net["blueprint"]["edges"]},
            "modules": [net["modules"][i] for i in used]}


def mutate_network(space: Space, net: dict, rng) -> dict:
    """One change: a module mutated (fields, add-node, add-edge), or the blueprint given a new node
    (holding a new module or an existing one), a new edge, or a node pointed at another module.
    Drawn again (up to 10 times) when the change left the network as it was."""
    for _ in range(10):
        out = _mutate_once(space, net, rng)
        if out != net:
            break
    return out


def _mutate_once(space: Space, net: dict, rng) -> dict:
    out = copy.deepcopy(net)
    bp, modules = out["blueprint"], out["modules"]
    kinds = ["module", "module", "module", "bp_edge", "bp_module"]
    if len(bp["nodes"]) < space.blueprint_size[1]:
        kinds.append("bp_node")
    kind = kinds[rng.randrange(len(kinds))]
    if kind == "module":
        i = rng.randrange(len(modules))
        modules[i] = mutate_module(space, modules[i], rng, add_node=0.3, add_edge=0.3)
    elif kind == "bp_edge":
        if not insert_edge(bp, "nodes", rng):
            i = rng.randrange(len(modules))
            modules[i] = mutate_module(space, modules[i], rng)
    elif kind == "bp_module":
        j = rng.randrange(len(bp["nodes"]))
        if rng.random() < 0.5 or len(modules) == 1:
            modules.append(sample_module(space, rng))
            bp["nodes"][j] = len(modules) - 1
        else:
            bp["nodes"][j] = rng.randrange(len(modules))
    else:
        if rng.random() < 0.5:
            modules.append(sample_module(space, rng))
            insert_node(bp, "nodes", len(modules) - 1, rng)
        else:
            insert_node(bp, "nodes", rng.randrange(len(modules)), rng)
    return _compact(out)


def crossover_network(space: Space, a: dict, b: dict, rng) -> dict:
    """The blueprint of `a`; each of its modules crossed with the module of `b` at the same index."""
    out = copy.deepcopy(a)
    out["modules"] = [crossover_module(space, m, b["modules"][i], rng) if i < len(b["modules"]) else m
                      for i, m in enumerate(out["modules"])]
    return _compact(out)


def network_distance(space: Space, a: dict, b: dict) -> float:
    bp = blueprint_distance(a["blueprint"], b["blueprint"])
    ma, mb = a["modules"], b["modules"]
    mods = sum(module_distance(space, x, y) for x, y in zip(ma, mb)) + abs(len(ma) - len(mb))
    return bp + mods / max(len(ma), len(mb))


# ---------------------------------------------------------------------------------------------- checking


def check_layer(layer: Any) -> str | None:
    if not isinstance(layer, dict) or layer.get("type") not in LAYER_FIELDS:
        return f"a layer is {{\"type\": \"conv\" | \"dense\" | \"dropout\", ...}}, got {layer!r}"
    fields = dict(LAYER_FIELDS[layer["type"]])
    extra = sorted(set(layer) - set(fields) - {"type"})
    if extra:
        return f"a {layer['type']} layer has no field {extra[0]!r}"
    for name, kind in fields.items():
        x, (lo, hi) = layer.get(name), LAYER_LIMITS[name]
        ok = isinstance(x, (int, float)) and not isinstance(x, bool) and (kind == "float" or float(x).is_integer())
        if not ok or not lo <= x <= hi:
            return f"a {layer['type']} layer's {name} must be {'a number' if kind == 'float' else 'an integer'} " \
                   f"in [{lo}, {hi}], got {x!r}"
    return None


def check_graph(graph: Any, key: str, what: str) -> str | None:
    if not isinstance(graph, dict) or set(graph) != {key, "edges"} or not isinstance(graph[key], list) \
            or not isinstance(graph["edges"], list):
        return f"a {what} is {{\"{key}\": [...], \"edges\": [[i, j], ...]}}, got {graph!r}"
    n = len(graph[key])
    if n == 0:
        return f"a {what} needs at least one {key[:-1]}"
    for e in graph["edges"]:
        if not (isinstance(e, list) and len(e) == 2 and all(isinstance(x, int) for x in e) and 0 <= e[0] < e[1] < n):
            return f"a {what} edge is [i, j] with 0 <= i < j < {n} (the list order is topological), got {e!r}"
    if len({tuple(e) for e in graph["edges"]}) != len(graph["edges"]):
        return f"a {what} lists an edge twice"
    return None


def check_network(blueprint: Any, modules: Any) -> str | None:
    """Why `network(blueprint, modules)` is not a valid network, or None."""
    if not isinstance(modules, list) or not modules:
        return "a network needs at least one module"
    for m in modules:
        err = check_graph(m, "layers", "module")
        if err:
            return err
        for layer in m["layers"]:
            err = check_layer(layer)
            if err:
                return err
    err = check_graph(blueprint, "nodes", "blueprint")
    if err:
        return err
    for x in blueprint["nodes"]:
        if not (isinstance(x, int) and not isinstance(x, bool) and 0 <= x < len(modules)):
            return f"a blueprint node is the index of a module (0 to {len(modules) - 1}), got {x!r}"
    return None


def outside(space: Space, net: dict) -> str | None:
    """Why a valid network is not in the space (a layer type or size it does not draw), or None."""
    lo, hi = space.blueprint_size
    if not lo <= len(net["blueprint"]["nodes"]) <= hi:
        return f"has {len(net['blueprint']['nodes'])} blueprint nodes (blueprint_size is [{lo}, {hi}])"
    lo, hi = space.module_size
    for m in net["modules"]:
        if not lo <= len(m["layers"]) <= hi:
            return f"has a module of {len(m['layers'])} layers (module_size is [{lo}, {hi}])"
        for layer in m["layers"]:
            gene = space.gene(layer["type"])
            if gene is None:
                return f"has a {layer['type']} layer (the genes are {', '.join(g.type for g in space.genes)})"
            for name, (a, b) in gene.ranges.items():
                if not a <= layer[name] <= b:
                    return f"has a {layer['type']} layer with {name} = {layer[name]} outside [{a}, {b}]"
    return None


# -------------------------------------------------------------------------------------------- describing


def describe_layer(layer: dict) -> str:
    if layer["type"] == "conv":
        return f"conv({layer['channels']}, {layer['kernel']}x{layer['kernel']})"
    if layer["type"] == "dense":
        return f"dense({layer['units']})"
    return f"dropout({layer['rate']:g})"


def describe_graph(graph: dict, key: str, name) -> str:
    preds, sinks = sources_and_sinks(len(graph[key]), graph["edges"])
    parts = []
    for i, x in enumerate(graph[key]):
        src = "in" if not preds[i] else "+".join(str(j) for j in preds[i])
        parts.append(f"{i}: {name(x)} <- {src}")
    return "; ".join(parts) + f"; out <- {'+'.join(str(s) for s in sinks)}"


def describe_network(net: dict) -> list[str]:
    lines = ["blueprint: " + describe_graph(net["blueprint"], "nodes", lambda m: f"module {m}")]
    for i, m in enumerate(net["modules"]):
        lines.append(f"module {i}: " + describe_graph(m, "layers", describe_layer))
    lines.append("head: dense(classes) <- out")
    return lines
