"""Operators' static checks (`@op(..., precheck=fn)`), run on the lowered program by `expc check`.

An operator may know before anything runs that it will fail: two pretrained() directories of
different vocabularies cannot be merged, which their headers tell. Each node whose operator declares
a precheck gets its arguments as constants (files as absolute paths), a Producer (operator and
constant arguments) in place of each input reference, and UNKNOWN for what only a run decides; the
problems it returns become diagnostics at their field's span, with the text the run would show.
"""

from __future__ import annotations

from typing import Any

from expc.runtime.api import UNKNOWN, OpError, Producer
from expc.runtime.registry import Registry
from expc.spec.diagnostics import Collector, closest_span
from expc.spec.ir import Arith, FileRef, Node, OpNode, ParamRef, Ref, Wire, to_wire


def run_prechecks(nodes: dict[str, Node], registry: Registry, diags: Collector) -> None:
    for node in nodes.values():
        op = registry.get(node.op)
        if op is None or op.precheck is None:
            continue
        try:
            problems = list(op.precheck(constant_args(node.args, nodes)))
        except OpError as e:  # raising the first problem is as good as returning it
            problems = [e]
        for p in problems:
            span = closest_span(node.arg_spans, p.field or "", node.span)
            diags.error(p.code, f"{node.id}: {p.message}", span, hint=p.hint)


def constant_args(args: dict[str, Any], nodes: dict[str, Node] | None) -> dict[str, Any]:
    """A node's arguments as a precheck sees them; `nodes` is None for a producer's own arguments
    (one level is described: a producer's inputs are UNKNOWN)."""

    def fn(v: Any) -> Wire | None:
        if isinstance(v, FileRef):
            return Wire(v.path)
        if isinstance(v, Ref):
            target = nodes.get(v.node) if nodes is not None and not v.path else None
            if isinstance(target, OpNode):
                return Wire(Producer(target.op, constant_args(target.args, None)))
            return Wire(UNKNOWN)
        if isinstance(v, (ParamRef, Arith)):
            return Wire(UNKNOWN)
        return None

    return {k: to_wire(v, fn) for k, v in args.items()}
