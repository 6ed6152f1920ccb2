"""Completion: what may be written at the cursor, read from the tokens of the statement being typed
(which usually does not parse yet) and the names and types of the last analysis.

    <statement start>         statement keywords
    data x = |                operators of kind `data` (a snippet with their required fields), then
                              names whose type a `data` declaration holds
    finetune(|                its fields (`steps = `), and names of the next positional field's type
                              first (models for finetune's first field)
    finetune(base, lr = |     names of the field's type; a choice field's options
    search s { sampler = |    the same for a block's fields; `experiment e { | }`: the settings
    parts.|                   the members of its type (`train`, `test`)
    import "|                 .exp files
"""

from __future__ import annotations

import re
import types as pytypes
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lsprotocol import types as lsp

from expc.interpreter.lsp import docs
from expc.interpreter.lsp.analysis import Analysis
from expc.interpreter.lsp.completion_context import Context, _statement, context
from expc.runtime.registry import Operator
from expc.runtime.types import parse_type
from expc.spec.types import KINDS

_IDENT_END = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_DECLARED = re.compile(r"^[ \t]*([A-Za-z_]\w*)[ \t]+([A-Za-z_]\w*)[ \t]*[=~{]", re.M)
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH"}
_WINDOW = 200  # lines before the cursor read to find the statement it is in


def complete(a: Analysis | None, text: str, line: int, col: int, registry, doc_path: Path,
             position: lsp.Position, units) -> list[lsp.CompletionItem]:
    """Items for the cursor at (line, col), 1-based, in `text` (the current buffer)."""
    lines = text.split("\n")
    cur = lines[line - 1][: col - 1] if line <= len(lines) else ""
    first = max(0, line - 1 - _WINDOW)
    window = "\n".join(lines[first: line - 1] + [cur])
    stmt = _statement(window)
    ctx = context(stmt, registry)
    prefix = _IDENT_END.search(cur)
    word = prefix.group() if prefix else ""
    if ctx.what == "string":
        word = ctx.string.rsplit("/", 1)[-1]
    start = lsp.Position(line=position.line, character=max(0, position.character - units(word)))
    edit_range = lsp.Range(start=start, end=position)
    names = _names(a, text)
    items = _items(ctx, a, names, registry, doc_path)
    for it in items:
        it.text_edit = lsp.TextEdit(range=edit_range, new_text=it.insert_text or it.label)
    return items


# -- items -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    kind: str  # "param" or a declaration kind
    type: str | None


def _names(a: Analysis | None, text: str) -> dict[str, Name]:
    """Declared names, their kinds and types: the analysis's, and those the buffer declares since."""
    kinds: dict[str, str] = {}
    if a is not None:
        kinds.update((name, sym.kind) for name, sym in a.index.symbols.items())
    for m in _DECLARED.finditer(text):
        kw = m.group(1)
        if kw == "param" or kw in KINDS:
            kinds.setdefault(m.group(2), kw)
    out = {}
    for name, kind in kinds.items():
        try:
            t = a.type_of(name) if a is not None else None
        except Exception:  # a type is a convenience here
            t = None
        out[name] = Name(kind, t)
    return out


def _items(ctx: Context, a: Analysis | None, names: dict[str, Name], registry,
           doc_path: Path) -> list[lsp.CompletionItem]:
    if ctx.what == "statement":
        return _keywords()
    if ctx.what == "member":
        return _members(ctx, a, registry)
    if ctx.what == "string":
        return _paths(ctx, doc_path)
    if ctx.what == "field":
        items = _fields(ctx, registry, names)
        if ctx.op is not None and ctx.field is not None:
            items += _values(ctx, names, registry)
        return items
    if ctx.what == "value":
        return _values(ctx, names, registry)
    return []


def _keywords() -> list[lsp.CompletionItem]:
    items = [
        _item("experiment", lsp.CompletionItemKind.Keyword, "experiment NAME { settings }",
              "experiment ${1:name} {\n  $0\n}", sort="0"),
        _item("import", lsp.CompletionItemKind.Keyword, "import \"FILE.exp\"", 'import "$1"', sort="0"),
        _item("param", lsp.CompletionItemKind.Keyword, "param NAME = VALUE, or param NAME ~ DISTRIBUTION",
              "param ${1:name} ${2|=,~|} $0", sort="0"),
    ]
    for kind, (_, doc) in KINDS.items():
        items.append(_item(kind, lsp.CompletionItemKind.Keyword, doc, f"{kind} ${{1:name}} = $0", sort="1"))
    return items


def _fields(ctx: Context, registry, names: dict[str, Name]) -> list[lsp.CompletionItem]:
    items = []
    if ctx.kind == "experiment":
        for s in docs.settings():
            if s not in ctx.given:
                items.append(_item(s, lsp.CompletionItemKind.Property, "experiment setting", f"{s} = ",
                                   doc=docs.setting_markdown(s), sort="0"))
        return items
    if ctx.bind is not None:  # node(param = value): the params it may bind
        for name, n in names.items():
            if n.kind == "param" and name not in ctx.given:
                items.append(_item(name, lsp.CompletionItemKind.Variable, f"param: {n.type or '?'}", f"{name} = ",
                                   sort="0" + name))
        return items
    op = ctx.op
    for f in op.fields:
        if f.name in ctx.given or f.variadic:
            continue
        items.append(_item(f.name, lsp.CompletionItemKind.Field, docs.field_line(f), f"{f.name} = ",
                           doc=f.description or None, sort="1" if f.required else "2"))
    return items


def _values(ctx: Context, names: dict[str, Name], registry) -> list[lsp.CompletionItem]:
    types = registry.types
    expected = ctx.expected
    if ctx.param is not None and names.get(ctx.param) is not None and names[ctx.param].type:
        expected = (names[ctx.param].type,)  # node(param = |): a value of the param's type
    items: list[lsp.CompletionItem] = []

    def fits(t: str | None) -> bool:
        return t is not None and expected is not None and types.accepts(t, expected)

    for name, n in names.items():
        if name == ctx.declaring:
            continue
        sort = "0" if fits(n.type) else "3" if expected is not None else "1"
        detail = f"{n.kind}: {n.type}" if n.type else n.kind
        items.append(_item(name, lsp.CompletionItemKind.Variable, detail, name, sort=sort + name, snippet=False))
    for op in registry.ops.values():
        sort = _op_rank(op, ctx, types)
        if sort is None:
            continue
        items.append(_item(op.name, lsp.CompletionItemKind.Function, docs.signature(op), docs.snippet(op),
                           doc=op.summary, sort=sort + op.name, snippet=True))
    f = ctx.field
    if f is not None:
        for option in _options(f.annotation):
            items.append(_item(option, lsp.CompletionItemKind.EnumMember, f"{f.name}: {docs.field_type(f)}",
                               option, sort="0" + option))
    return items


def _op_rank(op: Operator, ctx: Context, types) -> str | None:
    """Where an operator goes in the list: "0" fits exactly, "2" may fit, None does not belong."""
    if ctx.kind is not None:  # the right-hand side of KIND NAME = ...
        if op.inline:
            return None
        return "0" if ctx.kind in op.kinds else "2" if _returns_fit(op, ctx.expected, types) is not None else None
    if ctx.field is not None and ctx.field.input_types is None and not ctx.field.deferred:
        return None  # a number, a string, a choice: no operator computes those
    if ctx.expected is None:
        return "4"  # an expression, or a field that takes anything (a search's objective)
    fit = _returns_fit(op, ctx.expected, types)
    return None if fit is None else "1" if fit else "2"


def _returns_fit(op: Operator, expected, types) -> bool | None:
    """True when the operator's result has one of the expected types, None when it cannot; False
    when it depends on an argument (`take` returns its data's type, which may fit)."""
    base = parse_type(op.returns)[0]
    if base.startswith("{"):
        return False
    return True if types.accepts(base, expected) else None


def _options(annotation: Any) -> list[str]:
    """The values of a Literal field (also inside Optional/Union), as the language writes them."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return [f'"{v}"' if isinstance(v, str) else str(v).lower() for v in typing.get_args(annotation)]
    if origin in (typing.Union, pytypes.UnionType, typing.Annotated):
        return [o for arg in typing.get_args(annotation) for o in _options(arg)]
    if annotation is bool:
        return ["true", "false"]
    return []


def _members(ctx: Context, a: Analysis | None, registry) -> list[lsp.CompletionItem]:
    if a is None or ctx.obj is None:
        return []
    t = a.guess(ctx.obj)
    if t is None:
        return []
    members = registry.types.members(t) or {}
    return [_item(m, lsp.CompletionItemKind.Property, mt, m, sort="0" + m) for m, mt in members.items()]


def _paths(ctx: Context, doc_path: Path) -> list[lsp.CompletionItem]:
    typed = ctx.string
    folder = (doc_path.parent / typed).parent if "/" in typed else doc_path.parent
    try:
        entries = sorted(folder.iterdir())[:500]
    except OSError:
        return []
    items = []
    for e in entries:
        if e.name.startswith(".") or e == doc_path:
            continue
        if ctx.field is None and not (e.is_dir() or e.suffix == ".exp"):
            continue  # an import: .exp files
        name = e.name + ("/" if e.is_dir() else "")
        kind = lsp.CompletionItemKind.Folder if e.is_dir() else lsp.CompletionItemKind.File
        items.append(_item(name, kind, "", name, sort=("0" if e.is_dir() else "1") + name, snippet=False))
    return items


def _item(label: str, kind, detail: str, insert: str, doc: str | None = None, sort: str = "5",
          snippet: bool | None = None) -> lsp.CompletionItem:
    is_snippet = snippet if snippet is not None else "$" in insert
    return lsp.CompletionItem(
        label=label, kind=kind, detail=detail or None, sort_text=sort,
        documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=doc) if doc else None,
        insert_text=insert,
        insert_text_format=lsp.InsertTextFormat.Snippet if is_snippet else lsp.InsertTextFormat.PlainText,
    )
