"""`expc graph`: the node DAG as Mermaid or Graphviz dot text."""

from __future__ import annotations

from expc.interpreter.graph import deferred_refs, input_refs
from expc.runtime.registry import Registry
from expc.spec.ir import BindNode, Program


def edges(program: Program, registry: Registry) -> list[tuple[str, str, str]]:
    """(from, to, style): solid for inputs, dashed for deferred (search objectives) and bind targets."""
    out = []
    for node in program.nodes.values():
        for _, ref in input_refs(node, registry):
            out.append((ref.node, node.id, "input"))
        if isinstance(node, BindNode):
            out.append((node.target, node.id, "bind"))
        else:
            for r in deferred_refs(node, registry):
                out.append((r, node.id, "deferred"))
    seen = set()
    uniq = []
    for e in out:
        if e not in seen:
            seen.add(e)
            uniq.append(e)
    return uniq


def _label(program: Program, nid: str) -> str:
    n = program.nodes[nid]
    return f"{nid}\\n{n.op}" if n.kind else f"{n.op}"


def to_mermaid(program: Program, registry: Registry) -> str:
    ids = {nid: f"n{i}" for i, nid in enumerate(sorted(program.nodes))}
    lines = ["flowchart LR"]
    for nid in sorted(program.nodes):
        n = program.nodes[nid]
        label = f"{nid}<br/>{n.op}" if n.kind else n.op
        shape = ("([", "])") if n.kind else ("[", "]")
        lines.append(f'  {ids[nid]}{shape[0]}"{label}"{shape[1]}')
    for a, b, style in edges(program, registry):
        arrow = "-->" if style == "input" else "-.->"
        lines.append(f"  {ids[a]} {arrow} {ids[b]}")
    return "\n".join(lines)


def to_dot(program: Program, registry: Registry) -> str:
    lines = ["digraph expc {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for nid in sorted(program.nodes):
        n = program.nodes[nid]
        style = ', style="rounded,bold"' if n.kind else ""
        lines.append(f'  "{nid}" [label="{_label(program, nid)}"{style}];')
    for a, b, style in edges(program, registry):
        attr = "" if style == "input" else " [style=dashed]"
        lines.append(f'  "{a}" -> "{b}"{attr};')
    lines.append("}")
    return "\n".join(lines)
