"""Static questions about the node graph: inputs of a node, params a node depends on.

The registry is passed in (never looked up globally), so a program checked against a custom registry
(tests, plugins) is planned against the same one."""

from __future__ import annotations

from typing import Iterator

from expc.runtime.registry import Registry
from expc.spec.ir import BindNode, Node, ParamRef, Ref, params, refs, walk


def input_refs(node: Node, registry: Registry) -> Iterator[tuple[str, Ref]]:
    """(args path, ref) of every node reference the node needs computed before it runs; references in
    Deferred fields (a search objective) are evaluated by the operator itself and are not inputs."""
    if isinstance(node, BindNode):
        for path, v in walk(node.source, "source"):
            if isinstance(v, Ref):
                yield path, v
        return
    op = registry.get(node.op)
    for key, value in node.args.items():
        f = op.field(key) if op else None
        if f is not None and f.deferred:
            continue
        for path, v in walk(value, key):
            if isinstance(v, Ref):
                yield path, v


def deferred_refs(node: Node, registry: Registry) -> Iterator[str]:
    if isinstance(node, BindNode):
        return
    op = registry.get(node.op)
    for key, value in node.args.items():
        f = op.field(key) if op else None
        if f is not None and f.deferred:
            for r in refs(value):
                yield r.node


def params_used(node_id: str, nodes: dict[str, Node], registry: Registry, _memo: dict | None = None) -> set[str]:
    """Params whose value can change the node's result (through it or any input)."""
    memo = {} if _memo is None else _memo
    if node_id in memo:
        return memo[node_id]
    memo[node_id] = set()  # cycles are reported by the checker; don't recurse forever
    node = nodes[node_id]
    if isinstance(node, BindNode):
        used = params_used(node.target, nodes, registry, memo) - set(node.bindings)
        for v in node.bindings.values():
            used |= params(v)
        if node.source is not None:
            used |= params(node.source)
            for r in refs(node.source):
                used |= params_used(r.node, nodes, registry, memo)
    else:
        used = set()
        op = registry.get(node.op)
        for key, value in node.args.items():
            f = op.field(key) if op else None
            if f is not None and f.deferred:
                continue
            used |= params(value)
            for r in refs(value):
                if r.node in nodes:
                    used |= params_used(r.node, nodes, registry, memo)
    memo[node_id] = used
    return used


def objective_params(node: Node, nodes: dict[str, Node], registry: Registry, memo: dict | None = None) -> set[str]:
    """Params an evaluating operator (see registry.Evaluates) varies: its `over` list if given, else
    every param its deferred nodes depend on."""
    op = registry.get(node.op)
    over = node.args.get(op.evaluates.over) if op is not None and op.evaluates and op.evaluates.over else None
    named = {v.name for _, v in walk(over) if isinstance(v, ParamRef)} if over is not None else set()
    if named:
        return named
    used: set[str] = set()
    for r in deferred_refs(node, registry):
        if r in nodes:
            used |= params_used(r, nodes, registry, memo)
    return used
