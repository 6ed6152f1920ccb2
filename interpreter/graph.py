"""Static questions about the node graph: inputs of a node, params a node depends on."""

from __future__ import annotations

from typing import Iterator

from expc.interpreter import symbolic
from expc.runtime.registry import load_registry
from expc.spec.ir import Node


def input_refs(node: Node) -> Iterator[tuple[str, dict]]:
    """(args path, ref) of every node reference the node needs computed before it runs; references in
    Deferred fields (a search objective) are evaluated by the operator itself and are not inputs."""
    if node.op == "bind":
        frm = node.args.get("from")
        for path, v in symbolic.walk(frm, "from"):
            if symbolic.is_tagged(v, "$ref"):
                yield path, v
        return
    op = load_registry().get(node.op)
    for key, value in node.args.items():
        f = op.field(key) if op else None
        if f is not None and f.deferred:
            continue
        for path, v in symbolic.walk(value, key):
            if symbolic.is_tagged(v, "$ref"):
                yield path, v


def deferred_refs(node: Node) -> Iterator[str]:
    op = load_registry().get(node.op)
    for key, value in node.args.items():
        f = op.field(key) if op else None
        if f is not None and f.deferred:
            for r in symbolic.refs(value):
                yield r["$ref"]


def params_used(node_id: str, nodes: dict[str, Node], _memo: dict | None = None) -> set[str]:
    """Params whose value can change the node's result (through it or any input)."""
    memo = {} if _memo is None else _memo
    if node_id in memo:
        return memo[node_id]
    memo[node_id] = set()  # cycles are reported by the checker; don't recurse forever
    node = nodes[node_id]
    if node.op == "bind":
        used = params_used(node.args["target"], nodes, memo) - set(node.args.get("bindings", {}))
        used |= symbolic.params(node.args.get("bindings"))
        if node.args.get("from") is not None:
            used |= symbolic.params(node.args["from"])
            for r in symbolic.refs(node.args["from"]):
                used |= params_used(r["$ref"], nodes, memo)
    else:
        used = set()
        op = load_registry().get(node.op)
        for key, value in node.args.items():
            f = op.field(key) if op else None
            if f is not None and f.deferred:
                continue
            used |= symbolic.params(value)
            for r in symbolic.refs(value):
                if r["$ref"] in nodes:
                    used |= params_used(r["$ref"], nodes, memo)
    memo[node_id] = used
    return used


def objective_params(node: Node, nodes: dict[str, Node]) -> set[str]:
    """Params a search varies: its `over` list if given, else everything its objective depends on."""
    over = node.args.get("over")
    if over:
        return {p["$param"] if isinstance(p, dict) else p for p in over if p is not None}
    used: set[str] = set()
    for r in deferred_refs(node):
        if r in nodes:
            used |= params_used(r, nodes)
    return used
