"""Hover: what the text under the cursor is, as markdown.

An operator shows its signature, doc and parameters (`expc ops NAME`); an argument's name its field;
a name its declaration (kind, type, the line that declares it; a param its value or distribution);
a member its type. A node whose result an earlier run left in the store shows its summary.
"""

from __future__ import annotations

from pathlib import Path

from expc.interpreter.lsp import docs
from expc.interpreter.lsp.analysis import Analysis
from expc.interpreter.lsp.cached import Cached, ResultReader
from expc.interpreter.lsp.symbols import Occurrence, resolve_file
from expc.spec import ast
from expc.spec.printer import format_expr


def hover(a: Analysis, occ: Occurrence, reader: ResultReader | None, store: Path | None) -> str | None:
    reg = a.registry
    if occ.what == "op":
        op = reg.get(occ.name)
        if op is None:
            return None
        text = docs.operator_markdown(op)
        node = _node_of_call(a, occ)
        return text + _cached(a, node, reader, store)
    if occ.what == "field":
        op = reg.get(occ.op or "")
        f = op.field(occ.name) if op is not None else None
        return docs.field_markdown(op, f) if f is not None else None
    if occ.what == "setting":
        return docs.setting_markdown(occ.name)
    if occ.what == "kind":
        return docs.kind_markdown(occ.name, reg)
    if occ.what in ("decl", "ref"):
        return _symbol(a, occ.name, reader, store)
    if occ.what == "member":
        obj_type = a.guess(occ.node.obj) if isinstance(occ.node, ast.Member) else None
        member_type = a.guess(occ.node) if isinstance(occ.node, ast.Member) else None
        if obj_type is None:
            return None
        return f"```text\n.{occ.name}: {member_type or '?'}\n```\nmember of {docs.type_markdown(obj_type, reg)}"
    if occ.what in ("import", "path"):
        base = resolve_file(occ.span.file).parent
        target = (base / occ.name).resolve()
        state = "" if target.exists() else " (not found)"
        return f"`{target}`{state}"
    if occ.what == "experiment":
        return f"**experiment** `{occ.name}`"
    return None


def _symbol(a: Analysis, name: str, reader: ResultReader | None, store: Path | None) -> str | None:
    sym = a.index.symbols.get(name)
    if sym is None:
        return None
    stmt = sym.stmt
    declared = _declaring_line(a, sym.file, stmt.span.line)
    where = f"{Path(sym.file).name}:{stmt.span.line}"
    t = a.type_of(name) or "?"
    if isinstance(stmt, ast.Param):
        sign = "~" if stmt.searched else "="
        head = f"**param** `{name}`: {t} {sign} `{format_expr(stmt.expr)}`"
        if stmt.searched and a.program is not None and name in a.program.params:
            default = _default(a, name)
            if default is not None:
                head += f" (default {default})"
    else:
        head = f"**{stmt.kind}** `{name}`: {t}"
    text = f"{head}\n\n```exp\n{declared}\n```\ndeclared at {where}"
    return text + _cached(a, name if a.program is not None and name in a.program.nodes else None, reader, store)


def _default(a: Analysis, name: str):
    """The default of a searched param's distribution, from the checked program."""
    dist = a.program.params[name].dist
    if hasattr(dist, "args"):  # a typed IR value (expc.spec.ir.Inline)
        value = dist.args.get("default")
        return getattr(value, "value", value)
    return dist.get("default") if isinstance(dist, dict) else None


def _declaring_line(a: Analysis, file: str, line: int) -> str:
    text = a.sources.line(file, line) if file != a.file else a.text.split("\n")[line - 1]
    return (text or "").rstrip()


def _node_of_call(a: Analysis, occ: Occurrence) -> str | None:
    """The plan node a call is: the declaration's own node, or the anonymous node with its span."""
    if a.program is None or not isinstance(occ.node, ast.Call):
        return None
    span = occ.node.span
    stmt = occ.stmt
    if isinstance(stmt, ast.Decl) and stmt.expr is occ.node and stmt.name in a.program.nodes:
        return stmt.name
    for nid, node in a.program.nodes.items():
        if node.span == span:
            return nid
    return None


def _cached(a: Analysis, node: str | None, reader: ResultReader | None, store: Path | None) -> str:
    if node is None or reader is None or store is None or a.program is None:
        return ""
    c: Cached | None = reader.cached(a.program, node, store)
    if c is None:
        return ""
    runs = ", ".join(f"run {r} {s}" + (f" in {sec:.1f} s" if sec is not None and s == "ran" else "")
                     for r, s, sec in c.runs[-3:])
    text = f"\n\n---\n**cached result** `{c.key[:12]}`: {c.summary}"
    return text + (f"\n\n{runs}" if runs else "")
