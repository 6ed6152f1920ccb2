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
from expc.interpreter.lsp.incremental import split_statements
from expc.runtime.registry import FieldInfo, Operator, type_name
from expc.runtime.types import parse_type
from expc.spec import ast
from expc.spec.lexer import OPS, TOKEN_RE
from expc.spec.diagnostics import Span
from expc.spec.types import KINDS, TYPES

_IDENT_END = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_DECLARED = re.compile(r"^[ \t]*([A-Za-z_]\w*)[ \t]+([A-Za-z_]\w*)[ \t]*[=~{]", re.M)
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH"}
_WINDOW = 200  # lines before the cursor read to find the statement it is in


@dataclass(frozen=True)
class Tok:
    type: str  # the lexer's terminal names: NAME, STRING, LPAR, EQUAL, ...
    value: str
    start: int  # offsets into the statement's text
    end: int


@dataclass
class Context:
    """Where the cursor is: `what` is one of statement, value, field, member, string, none."""

    what: str
    expected: tuple[str, ...] | None = None  # types the value may have (None: anything)
    kind: str | None = None  # the declaration kind whose right-hand side this is (top level)
    op: Operator | None = None  # the call or block whose field or value this is
    field: FieldInfo | None = None
    given: tuple[str, ...] = ()  # fields already given in the call
    bind: str | None = None  # the node re-instantiated by the call
    param: str | None = None  # the param whose value is being written: node(param = |)
    obj: ast.Expr | None = None  # the expression before the dot (member)
    string: str = ""  # the string's text before the cursor
    declaring: str | None = None  # the name the statement declares (not offered to itself)


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


def _statement(window: str) -> str:
    """The text of the statement the cursor is in, up to the cursor."""
    chunks = split_statements(window)
    if not chunks:
        return ""
    last = chunks[-1][1]
    if last.endswith("\n") and _depth(last) == 0:
        return ""  # the cursor is at the start of a new line after a complete statement
    return last


def _depth(text: str) -> int:
    return len(_open_brackets(_tokens(text)[0]))


def _tokens(text: str) -> tuple[list[Tok], str | None, bool]:
    """Tokens (no blanks, newlines or comments); the text of a string left open at the end; whether
    the text ends in a comment."""
    out: list[Tok] = []
    pos, n = 0, len(text)
    while pos < n:
        m = TOKEN_RE.match(text, pos)
        if m is None:
            eol = text.find("\n", pos)
            if text[pos] == '"' and eol < 0:
                return out, text[pos + 1:], False
            pos = eol if text[pos] == '"' else pos + 1  # a broken string earlier, or a stray character
            continue
        kind = m.lastgroup
        if kind == "OP":
            kind = OPS[m.group()]
        if kind not in ("WS", "_NL", "COMMENT"):
            out.append(Tok(kind, m.group(), pos, m.end()))
        elif kind == "COMMENT" and m.end() == n:
            return out, None, True
        pos = m.end()
    return out, None, False


def _open_brackets(toks: list[Tok]) -> list[int]:
    """Indices of the brackets still open at the end."""
    stack: list[int] = []
    for i, t in enumerate(toks):
        if t.type in ("LPAR", "LSQB", "LBRACE"):
            stack.append(i)
        elif t.type in ("RPAR", "RSQB", "RBRACE") and stack:
            stack.pop()
    return stack


def context(stmt: str, registry) -> Context:
    toks, string, in_comment = _tokens(stmt)
    if in_comment:
        return Context("none")
    if string is not None:
        if toks and toks[0].type == "NAME" and toks[0].value == "import" and len(toks) == 1:
            return Context("string", string=string)
        field = _string_field(toks, registry)
        return Context("string", string=string, field=field) if field is not None else Context("none")
    if toks and toks[-1].type == "NAME" and toks[-1].end == len(stmt):
        toks = toks[:-1]  # the word being typed
    declaring = toks[1].value if len(toks) > 1 and toks[1].type == "NAME" else None
    if not toks:
        return Context("statement")
    if toks[-1].type == "DOT":
        obj = _postfix_before(toks, len(toks) - 1)
        return Context("member", obj=obj) if obj is not None else Context("none")
    stack = _open_brackets(toks)
    if not stack:
        return _top_level(toks, registry, declaring)
    return _inside(toks, stack, stmt, registry, declaring)


def _top_level(toks: list[Tok], registry, declaring: str | None) -> Context:
    head = toks[0].value if toks[0].type == "NAME" else None
    if len(toks) < 3:
        return Context("none")  # a keyword and the name being declared
    if head == "param":
        if toks[2].type == "TILDE" and len(toks) == 3:
            return Context("value", expected=("dist",), declaring=declaring)
        return Context("value", expected=("number", "int", "string", "bool", "list", "record"), declaring=declaring)
    if head in KINDS and toks[2].type == "EQUAL":
        if len(toks) == 3:
            return Context("value", expected=tuple(registry.types.kind_types(head)), kind=head, declaring=declaring)
        if toks[-1].type in _OPERATORS:  # merge algebra: base + w * (m - base)
            return Context("value", expected=tuple(registry.types.kind_types(head)), declaring=declaring)
    return Context("none")


def _inside(toks: list[Tok], stack: list[int], stmt: str, registry, declaring: str | None) -> Context:
    i = stack[-1]
    opener = toks[i]
    level = _level_tokens(toks, i)  # the tokens directly inside the innermost bracket
    current = _after_last_comma(level)
    if opener.type == "LBRACE" and i == 2 and len(stack) == 1 and toks[0].type == "NAME":
        # a block: KIND NAME { FIELD = EXPR ... } (or the experiment's settings)
        head = toks[0].value
        op = registry.get(head) if head != "experiment" else None
        fields = _block_fields(level)
        new_field = not current or (_newline_after(stmt, toks[-1])
                                    and current[-1].type not in _OPERATORS | {"EQUAL"})
        if new_field or (current and current[-1].type == "COMMA"):
            if head == "experiment":
                return Context("field", given=tuple(fields), kind="experiment")
            return Context("field", op=op, given=tuple(fields), declaring=declaring) if op else Context("none")
        name = fields[-1] if fields else None
        if head == "experiment":
            return Context("value", declaring=declaring)
        f = op.field(name) if op is not None and name else None
        return _value_for(op, f, current, declaring)
    if opener.type == "LPAR" and i > 0 and toks[i - 1].type == "NAME":
        callee = toks[i - 1].value
        op = registry.get(callee)
        given = tuple(t.value for j, t in enumerate(level[:-1]) if t.type == "NAME" and level[j + 1].type == "EQUAL")
        if op is None:
            if declaring is not None and callee != declaring:
                if not current:
                    return Context("field", bind=callee, given=given, declaring=declaring)
                param = current[0].value if _is_kwarg(current) else None
                return Context("value", bind=callee, param=param, declaring=declaring)
            return Context("value", declaring=declaring)
        if not current:
            positional = sum(1 for x in _split_commas(level)[:-1] if not _is_kwarg(x))
            f = _positional_field(op, positional)
            given += tuple(x.name for x in op.fields[:positional])  # filled by position
            return Context("field", op=op, field=f, given=given, expected=_expected(f), declaring=declaring)
        if _is_kwarg(current):
            return _value_for(op, op.field(current[0].value), current[2:], declaring)
        positional = sum(1 for x in _split_commas(level)[:-1] if not _is_kwarg(x))
        return _value_for(op, _positional_field(op, positional), current, declaring)
    if opener.type == "LSQB":
        outer = _inside(toks[:i], stack[:-1], stmt, registry, declaring) if len(stack) > 1 else None
        if outer is not None and outer.field is not None:
            return Context("value", expected=outer.field.input_types, op=outer.op, field=outer.field,
                           declaring=declaring)
        return Context("value", declaring=declaring)
    if opener.type == "LBRACE":  # a record: values after `key:`
        if current and current[-1].type == "COLON":
            return Context("value", declaring=declaring)
        return Context("none")
    return Context("value", declaring=declaring)  # parentheses around an expression


def _value_for(op: Operator | None, f: FieldInfo | None, current: list[Tok], declaring: str | None) -> Context:
    if current and current[-1].type not in _OPERATORS | {"EQUAL", "COMMA", "COLON"}:
        return Context("none")  # after a complete value: nothing is expected but `,` or `)`
    return Context("value", expected=_expected(f), op=op, field=f, declaring=declaring)


def _expected(f: FieldInfo | None) -> tuple[str, ...] | None:
    """The types a field takes: its inputs' types, or the built-in types its annotation names."""
    if f is None:
        return None
    if f.input_types is not None:
        return f.input_types
    scalars = tuple(t for t in type_name(f.annotation).split(" | ") if t in TYPES and t != "any")
    return scalars or None


def _level_tokens(toks: list[Tok], opener: int) -> list[Tok]:
    out, depth = [], 0
    for t in toks[opener + 1:]:
        if t.type in ("LPAR", "LSQB", "LBRACE"):
            depth += 1
            if depth == 1:
                out.append(t)  # stands for the whole nested value
            continue
        if t.type in ("RPAR", "RSQB", "RBRACE"):
            depth -= 1
            continue
        if depth == 0:
            out.append(t)
    return out


def _split_commas(level: list[Tok]) -> list[list[Tok]]:
    parts: list[list[Tok]] = [[]]
    for t in level:
        if t.type == "COMMA":
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _after_last_comma(level: list[Tok]) -> list[Tok]:
    for j in range(len(level) - 1, -1, -1):
        if level[j].type == "COMMA":
            return level[j + 1:]
    return level


def _is_kwarg(arg: list[Tok]) -> bool:
    return len(arg) >= 2 and arg[0].type == "NAME" and arg[1].type == "EQUAL"


def _block_fields(level: list[Tok]) -> list[str]:
    return [t.value for j, t in enumerate(level[:-1]) if t.type == "NAME" and level[j + 1].type == "EQUAL"]


def _newline_after(stmt: str, tok: Tok) -> bool:
    return "\n" in stmt[tok.end:]


def _positional_field(op: Operator, index: int) -> FieldInfo | None:
    fields = op.fields
    for j, f in enumerate(fields):
        if f.variadic and j <= index:
            return f
    return fields[index] if index < len(fields) else None


def _postfix_before(toks: list[Tok], dot: int) -> ast.Expr | None:
    """The postfix expression (names, members, calls) that ends before toks[dot], as a syntax tree
    (built here: the parser belongs to the checking thread)."""
    j = dot - 1
    while j >= 0:
        t = toks[j]
        if t.type == "RPAR":  # a call: skip to its opening bracket
            depth = 0
            while j >= 0:
                depth += toks[j].type == "RPAR"
                depth -= toks[j].type == "LPAR"
                if depth == 0:
                    break
                j -= 1
            j -= 1
            continue
        if t.type == "NAME":
            if j > 0 and toks[j - 1].type == "DOT":
                j -= 2
                continue
            e, end = _postfix(toks, j)
            return e if end == dot else None
        return None
    return None


_NOWHERE = Span("", 0, 0, 0, 0)
_LITERAL = {"INT": lambda v: ast.Int(int(v), v, _NOWHERE), "FLOAT": lambda v: ast.Float(float(v), v, _NOWHERE),
            "STRING": lambda v: ast.Str(v.strip('"'), v, _NOWHERE)}


def _postfix(toks: list[Tok], i: int) -> tuple[ast.Expr | None, int]:
    """NAME ( .NAME | (ARGS) )* from toks[i]: (expression, index after it). An argument that is not
    a postfix expression or a literal stands as `none` (its type is not needed to type the call)."""
    if i >= len(toks):
        return None, i
    t = toks[i]
    if t.type in _LITERAL:
        return _LITERAL[t.type](t.value), i + 1
    if t.type != "NAME":
        return None, i
    e: ast.Expr = ast.Name(t.value, _NOWHERE)
    i += 1
    while i < len(toks):
        if toks[i].type == "DOT" and i + 1 < len(toks) and toks[i + 1].type == "NAME":
            e = ast.Member(e, toks[i + 1].value, _NOWHERE, _NOWHERE)
            i += 2
        elif toks[i].type == "LPAR":
            args, kwargs, i = _arguments(toks, i + 1)
            e = ast.Call(e, tuple(args), tuple(kwargs), _NOWHERE)
        else:
            break
    return e, i


def _argument_end(toks: list[Tok], j: int) -> int:
    """The index of the `,` or `)` that ends the argument toks[j] is in."""
    depth = 0
    while j < len(toks) and not (depth == 0 and toks[j].type in ("COMMA", "RPAR")):
        depth += toks[j].type in ("LPAR", "LSQB", "LBRACE")
        depth -= toks[j].type in ("RPAR", "RSQB", "RBRACE")
        j += 1
    return j


def _arguments(toks: list[Tok], i: int) -> tuple[list, list, int]:
    """Positional and keyword arguments from toks[i] (after a `(`), and the index after the `)`."""
    args: list = []
    kwargs: list = []
    while i < len(toks) and toks[i].type != "RPAR":
        name = None
        if toks[i].type == "NAME" and i + 1 < len(toks) and toks[i + 1].type == "EQUAL":
            name, i = toks[i].value, i + 2
        value, j = _postfix(toks, i)
        end = _argument_end(toks, j)
        if value is None or end != j:  # more than a postfix expression (2 * x): its type is not needed
            value = ast.NoneLit(_NOWHERE)
        j = end
        if name is None:
            args.append(value)
        else:
            kwargs.append(ast.Kwarg(name, value, _NOWHERE, _NOWHERE))
        i = j + 1 if j < len(toks) and toks[j].type == "COMMA" else j
    return args, kwargs, i + 1


def _string_field(toks: list[Tok], registry) -> FieldInfo | None:
    """The path field a string being typed is an argument of, if any."""
    stack = _open_brackets(toks)
    if not stack or stack[-1] == 0 or toks[stack[-1] - 1].type != "NAME" or toks[stack[-1]].type != "LPAR":
        return None
    op = registry.get(toks[stack[-1] - 1].value)
    if op is None:
        return None
    level = _level_tokens(toks, stack[-1])
    current = _after_last_comma(level)
    if _is_kwarg(current):
        f = op.field(current[0].value)
    else:
        f = _positional_field(op, sum(1 for x in _split_commas(level)[:-1] if not _is_kwarg(x)))
    return f if f is not None and f.path_kind is not None else None


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
