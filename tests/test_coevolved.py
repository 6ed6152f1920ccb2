"""The `coevolved(...)` architecture space: its genomes (sample, mutate, crossover) are always valid
networks that build and run on digits-shaped input, `fit` trains one, and bad spaces are located
diagnostics."""

from __future__ import annotations

import random

import pytest
import torch
from _opctx import OpContext, run
from conftest import compile_errors
from hypothesis import given, settings
from hypothesis import strategies as st

from expc.interpreter.compiler import compile
from expc.runtime.genomes import coevolved as G
from expc.runtime.nets.build import build
from expc.runtime.ops import classify as C
from expc.runtime.ops import coevolved as CO
from expc.runtime.ops import data as D
from expc.runtime.ops import fit as FIT
from expc.runtime.ops import tensors as TS
from expc.runtime.registry import load_registry

REG = load_registry()
SPACE = CO.coevolved.params()  # the space: conv [4, 32] x [1, 3], dense [16, 128], dropout [0, 0.5]
SMALL = CO.coevolved.params(genes=[{"$op": "conv", "channels": [2, 4], "kernel": 3}, {"$op": "dense", "units": [4, 8]}],
                            module_size=[2, 2], blueprint_size=[1, 2])


def forward(genome: dict, shape=(1, 8, 8), classes=10) -> torch.Tensor:
    """Build the genome as `fit` does (validated as an inline value) and run a batch through it."""
    p = REG.built(FIT.fit.params(model=genome, data=None, steps=1), None).model
    net = build(p.arch(), list(shape), classes, (0.0, 16.0), seed=0)
    net.train()  # dropout active: the training path
    out = net(torch.rand(5, *shape) * 16)
    assert out.shape == (5, classes) and torch.isfinite(out).all()
    names = [n for n, _ in net.named_parameters()]
    assert "head.weight" in names and all(n.startswith(("head.", "layers.node")) for n in names)
    return out


def valid(space, genome: dict) -> dict:
    assert space.contains(genome) is None, (space.contains(genome), genome)
    return genome


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(0, 6))
def test_sampled_mutated_and_crossed_genomes_are_valid_networks(seed, steps):
    rng = random.Random(seed)
    a, b = SPACE.sample(rng), SPACE.sample(rng)
    for _ in range(steps):
        a = valid(SPACE, SPACE.mutate(a, rng))
    c, d = SPACE.crossover(valid(SPACE, a), valid(SPACE, b), rng)
    for g in (c, d):
        forward(valid(SPACE, g))
    assert SPACE.distance(a, a) == 0 and SPACE.distance(a, b) >= 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from([(1, 8, 8), (64,), (8, 8), (3, 5, 4)]))
def test_every_shape_path_runs(seed, shape):
    """conv after dense (a vector as a 1x1 image), images meeting vectors, flat and 2-d inputs."""
    rng = random.Random(seed)
    g = SPACE.sample(rng)
    for _ in range(3):
        g = SPACE.mutate(g, rng)
    forward(g, shape=shape, classes=3)


def test_mutation_stays_inside_a_small_space_and_changes_the_genome():
    rng = random.Random(0)
    g = SMALL.sample(rng)
    changed = 0
    for _ in range(200):
        h = valid(SMALL, SMALL.mutate(g, rng))
        changed += h != g
        g = h
    assert changed > 150
    assert all(len(m["layers"]) == 2 for m in g["modules"]) and len(g["blueprint"]["nodes"]) <= 2


def test_the_default_is_one_module_of_the_genes_in_order():
    g = SPACE.default_genome()
    assert g == {"$op": "network", "blueprint": {"nodes": [0], "edges": []}, "modules": [{
        "layers": [{"type": "conv", "channels": 11, "kernel": 2}, {"type": "dense", "units": 45},
                   {"type": "dropout", "rate": 0.25}], "edges": [[0, 1], [1, 2]]}]}
    forward(g)
    assert SPACE.describe(g) == ["blueprint: 0: module 0 <- in; out <- 0",
                                 "module 0: 0: conv(11, 2x2) <- in; 1: dense(45) <- 0; 2: dropout(0.25) <- 1; out <- 2",
                                 "head: dense(classes) <- out"]


def test_merging_concatenates_images_and_flattens_mixed_inputs():
    conv = {"layers": [{"type": "conv", "channels": 3, "kernel": 3}], "edges": []}
    dense = {"layers": [{"type": "dense", "units": 5}], "edges": []}
    g = G.assemble({"nodes": [0, 0, 1], "edges": [[0, 2], [1, 2]]}, [conv, conv, dense])
    net = build({"kind": "network", "blueprint": g["blueprint"], "modules": g["modules"]}, [1, 8, 8], 4, (0, 1), 0)
    assert net.layers["node2_layer0"].in_features == 6 * 8 * 8  # two 3-channel 8x8 maps, concatenated
    g = G.assemble({"nodes": [0, 1, 1], "edges": [[0, 2], [1, 2]]}, [conv, dense, dense])
    assert g["blueprint"]["nodes"] == [0, 1, 1]  # equal modules are stored once
    net = build({"kind": "network", "blueprint": g["blueprint"], "modules": g["modules"]}, [1, 8, 8], 4, (0, 1), 0)
    assert net.layers["node2_layer0"].in_features == 3 * 64 + 5  # a map and a vector: flattened
    assert net.head.in_features == 5


def test_fit_trains_a_coevolved_genome_on_digits(tmp_path):
    d = run(TS.digits, OpContext(tmp_path / "d"))
    parts = run(D.split, OpContext(tmp_path / "s"), data=d, test=0.2, seed=0)
    ctx = OpContext(tmp_path / "fit", node="clf")
    genome = SPACE.default_genome()
    clf = FIT.fit.fn(REG.built(FIT.fit.params(model=genome, data=parts["train"], epochs=3), ctx), ctx)
    acc = run(C.accuracy, OpContext(tmp_path / "acc"), model=clf, data=parts["test"])
    assert acc["value"] > 0.8  # chance is 0.1


# ---- check time ------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def write(src: str):
        (tmp_path / "main.exp").write_text(src)
        return tmp_path / "main.exp"

    return write


def test_a_coevolved_param_is_a_net(project):
    path = project("param arch ~ coevolved(genes = [conv(channels = [4, 32], kernel = [1, 3]), dense(units = [16, 128]),\n"
                   "                               dropout(rate = [0, 0.5])], module_size = [1, 3], blueprint_size = [1, 4])\n"
                   "data d = digits()\n"
                   "train clf = fit(arch, d, steps = 5)\n")
    assert compile(path).program.nodes["clf"].type == "classifier"


def test_bad_spaces_are_located(project):
    path = project("param a ~ coevolved(genes = [])\n"
                   "param b ~ coevolved(module_size = [3, 1])\n"
                   "param c ~ coevolved(genes = [conv(), conv(kernel = [1, 5])])\n"
                   "param e ~ coevolved(genes = [dense(units = [0, 8])])\n"
                   "param f ~ coevolved(genes = [dense(), mlp()])\n")
    assert compile_errors(path) == [
        ("E401", 1, 29, "invalid value for 'genes' of coevolved(): Value error, genes is empty: give at least one of "
                        "conv(...), dense(...), dropout(...)"),
        ("E401", 2, 35, "invalid value for 'module_size' of coevolved(): Value error, module_size = [3, 1]: lo must "
                        "not exceed hi"),
        ("E401", 3, 29, "invalid value for 'genes' of coevolved(): Value error, gene conv(...) is given twice: give "
                        "one range per layer type"),
        ("E401", 4, 44, "invalid value for 'units' of dense(): Value error, units must lie within [1, 4096], got [0, 8]"),
        ("E301", 5, 39, "argument 'genes' of coevolved() expects a list of gene, but an item is net"),
    ]


def test_a_written_network_is_checked(project):
    path = project('data d = digits()\n'
                   'train a = fit(network(blueprint = {nodes: [0, 0], edges: [[0, 1]]},\n'
                   '                      modules = [{layers: [{type: "conv", channels: 8, kernel: 3}], edges: []}]), d, steps = 1)\n'
                   'train b = fit(network(blueprint = {nodes: [0, 1], edges: []},\n'
                   '                      modules = [{layers: [{type: "dense", units: 8}], edges: []}]), d, steps = 1)\n')
    assert compile_errors(path) == [("E401", 4, 15, "invalid value of network(): Value error, a blueprint node is the index "
                                             "of a module (0 to 0), got 1")]


def test_an_unknown_gene_names_the_genes():
    with pytest.raises(ValueError, match=r"unknown gene cnv\(\.\.\.\): did you mean 'conv'\? \(genes are conv"):
        CO.coevolved.params(genes=[{"$op": "cnv"}])


def test_a_bad_network_is_named():
    with pytest.raises(ValueError, match=r"a module edge is \[i, j\] with 0 <= i < j < 1"):
        CO.network.params(blueprint={"nodes": [0], "edges": []}, modules=[{"layers": [{"type": "dense", "units": 4}],
                                                                           "edges": [[0, 0]]}])
    assert "blueprint nodes" in SMALL.contains(G.assemble({"nodes": [0, 0, 0], "edges": []},
                                                          [SMALL.sample(random.Random(0))["modules"][0]] * 3))
