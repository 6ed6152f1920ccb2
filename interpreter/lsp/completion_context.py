"""Where the cursor is, for completion: the tokens of the statement being typed (which usually does not
parse yet), the call or block it is inside, the field being written, the type expected there."""

from __future__ import annotations

import re
from dataclasses import dataclass

from expc.interpreter.lsp.incremental import split_statements
from expc.runtime.registry import FieldInfo, Operator, type_name
from expc.spec import ast
from expc.spec.diagnostics import Span
from expc.spec.lexer import OPS, TOKEN_RE
from expc.spec.types import KINDS, TYPES

_IDENT_END = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH"}


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
