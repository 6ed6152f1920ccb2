"""The canonical printer behind `expc fmt`: syntax tree -> text, in exactly one layout.

One statement per line, two-space indented block fields, spaces around binary operators and around
`=` in arguments, the fewest parentheses that keep the tree, numbers and strings as written. A
statement (or block field) longer than MAX_WIDTH breaks the arguments of its outermost call, list or
record one per line. Comments are kept: own-line comments stay before what they precede, trailing
comments at the end of their line; a comment inside an expression that does not break is moved
before its statement (or field). Printing is idempotent: format(format(x)) == format(x), and the
output parses to the same tree (tests/test_printer.py checks both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from expc.spec import ast
from expc.spec.diagnostics import Span

MAX_WIDTH = 100
INDENT = "  "

# Binding strength of each expression form; a child weaker than its context gets parentheses.
_SUM, _PRODUCT, _UNARY, _POSTFIX, _ATOM = 1, 2, 3, 4, 5
_OP_PREC = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT}


def format_source(text: str, file: str = "<input>") -> str:
    """Parse and print; raises CompileError when the text does not parse."""
    from expc.spec.parser import parse

    return format_module(parse(text, file))


def format_module(module: ast.Module) -> str:
    return _Printer(module).run()


# ---- expressions on one line ---------------------------------------------------------------------


def format_expr(e: ast.Expr) -> str:
    """An expression on one line, with minimal parentheses."""
    if isinstance(e, ast.Int):
        return e.text
    if isinstance(e, ast.Float):
        return e.text
    if isinstance(e, ast.Str):
        return e.raw
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.NoneLit):
        return "none"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Member):
        return _wrap(e.obj, _POSTFIX) + "." + e.name
    if isinstance(e, ast.Call):
        return _opening(e) + ", ".join(_item_text(h, v) for h, v, _ in _items(e)) + ")"
    if isinstance(e, ast.BinOp):
        p = _OP_PREC[e.op]
        # left-associative: a right operand of the same strength keeps its parentheses, a - (b - c)
        return f"{_wrap(e.left, p)} {e.op} {_wrap(e.right, p + 1)}"
    if isinstance(e, ast.Neg):
        # -(-x) rather than --x, which reads like a decrement
        return "-" + (f"({format_expr(e.operand)})" if isinstance(e.operand, ast.Neg) else _wrap(e.operand, _UNARY))
    if isinstance(e, ast.ListExpr):
        return "[" + ", ".join(format_expr(i) for i in e.items) + "]"
    if isinstance(e, ast.RecordExpr):
        return "{" + ", ".join(_item_text(h, v) for h, v, _ in _items(e)) + "}"
    raise TypeError(f"cannot print {e!r}")  # pragma: no cover


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.BinOp):
        return _OP_PREC[e.op]
    if isinstance(e, ast.Neg):
        return _UNARY
    if isinstance(e, (ast.Member, ast.Call)):
        return _POSTFIX
    return _ATOM


def _wrap(e: ast.Expr, at_least: int) -> str:
    text = format_expr(e)
    return f"({text})" if _prec(e) < at_least else text


def _item_text(head: str, value: ast.Expr) -> str:
    return head + format_expr(value)


def _quote(s: str) -> str:
    """A string literal for s (imports and quoted record keys keep only the unescaped value)."""
    out = ['"']
    for ch in s:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _key(f: ast.RecordField) -> str:
    return _quote(f.key) if f.quoted else f.key


# ---- breakable sequences: calls, lists, records --------------------------------------------------

_Item = tuple  # (head text, value expression, span of the whole item)


def _items(e: ast.Expr) -> list[_Item]:
    if isinstance(e, ast.Call):
        return [("", a, a.span) for a in e.args] + [(f"{k.name} = ", k.value, k.span) for k in e.kwargs]
    if isinstance(e, ast.ListExpr):
        return [("", i, i.span) for i in e.items]
    if isinstance(e, ast.RecordExpr):
        return [(f"{_key(f)}: ", f.value, f.span) for f in e.fields]
    raise TypeError(e)  # pragma: no cover


def _opening(e: ast.Expr) -> str:
    if isinstance(e, ast.Call):
        return _wrap(e.func, _POSTFIX) + "("
    return "[" if isinstance(e, ast.ListExpr) else "{"


def _closing(e: ast.Expr) -> str:
    return ")" if isinstance(e, ast.Call) else "]" if isinstance(e, ast.ListExpr) else "}"


def _target(e: ast.Expr) -> tuple[ast.Expr, str] | None:
    """The outermost call/list/record that may break, and the text that follows it (`.train`)."""
    if isinstance(e, (ast.Call, ast.ListExpr, ast.RecordExpr)):
        return e, ""
    if isinstance(e, ast.Member):
        inner = _target(e.obj)
        if inner is not None:
            return inner[0], inner[1] + "." + e.name
    return None


# ---- comments ------------------------------------------------------------------------------------


def _pos(c: ast.Comment) -> tuple[int, int]:
    return (c.line, c.col)


def _start(s: Span) -> tuple[int, int]:
    return (s.line, s.col)


def _end(s: Span) -> tuple[int, int]:
    return (s.end_line, s.end_col)


def _inside(c: ast.Comment, s: Span) -> bool:
    return _start(s) <= _pos(c) < _end(s)


def _trail(c: ast.Comment | None) -> str:
    return "  " + _text(c) if c is not None else ""


def _text(c: ast.Comment) -> str:
    return c.text.rstrip()


@dataclass
class _Slots:
    """Comments of a sequence of items, assigned to where they will be printed."""

    header: ast.Comment | None  # at the end of the opening line
    leading: list[list[ast.Comment]]  # own lines before item i
    inner: list[list[ast.Comment]]  # inside item i
    trailing: list[ast.Comment | None]  # at the end of item i's last line
    dangling: list[ast.Comment]  # own lines after the last item


def _assign(comments: Sequence[ast.Comment], spans: Sequence[Span]) -> _Slots:
    n = len(spans)
    slots = _Slots(None, [[] for _ in spans], [[] for _ in spans], [None] * n, [])
    for c in comments:
        k = next((i for i, s in enumerate(spans) if _pos(c) < _end(s)), None)
        if k is not None and _pos(c) >= _start(spans[k]):
            slots.inner[k].append(c)
            continue
        prev = (k if k is not None else n) - 1
        if prev >= 0 and not c.own_line and c.line == spans[prev].end_line and slots.trailing[prev] is None:
            slots.trailing[prev] = c
        elif prev < 0 and not c.own_line and slots.header is None:
            slots.header = c
        elif k is None:
            slots.dangling.append(c)
        else:
            slots.leading[k].append(c)
    return slots


# ---- the printer ---------------------------------------------------------------------------------


class _Printer:
    def __init__(self, module: ast.Module):
        self.module = module
        self.comments = sorted(module.comments, key=_pos)
        self.blank = module.blank_lines

    def run(self) -> str:
        stmts = self.module.stmts
        comments = self.comments
        lines: list[str] = []
        i = 0
        prev_end = 0
        for stmt in stmts:
            start, end = _start(stmt.span), _end(stmt.span)
            before: list[ast.Comment] = []
            while i < len(comments) and _pos(comments[i]) < start:
                before.append(comments[i])
                i += 1
            inside: list[ast.Comment] = []
            while i < len(comments) and _pos(comments[i]) < end:
                inside.append(comments[i])
                i += 1
            trailing = None
            if i < len(comments) and comments[i].line == stmt.span.end_line:
                trailing = comments[i]
                i += 1
            lines += self._gap(before, prev_end + 1, stmt.span.line, "", at_start=not lines)
            lines += self._stmt(stmt, inside, trailing)
            prev_end = stmt.span.end_line
        rest = comments[i:]
        hi = rest[-1].line if rest else prev_end + 1
        lines += self._gap(rest, prev_end + 1, hi, "", at_start=not lines)
        while lines and lines[-1] == "":
            lines.pop()
        return "\n".join(lines) + "\n" if lines else ""

    def _gap(self, comments: Iterable[ast.Comment], lo: int, hi: int, indent: str, at_start: bool) -> list[str]:
        """Comments on their own lines, with at most one blank line kept wherever the source had some."""
        events: list[tuple[int, int, str]] = [(c.line, c.col, indent + _text(c)) for c in comments]
        events += [(ln, 0, "") for ln in range(lo, hi) if ln in self.blank]
        out: list[str] = []
        last_blank = at_start  # no blank line at the start of a file or a block
        for _, _, text in sorted(events):
            if text == "":
                if not last_blank:
                    out.append("")
                last_blank = True
            else:
                out.append(text)
                last_blank = False
        return out

    # -- statements

    def _stmt(self, stmt: ast.Stmt, comments: list[ast.Comment], trailing: ast.Comment | None) -> list[str]:
        if isinstance(stmt, ast.Experiment):
            return self._block(f"experiment {stmt.name} {{", stmt.fields, comments, trailing)
        if isinstance(stmt, ast.Decl) and stmt.block:
            assert isinstance(stmt.expr, ast.Call)
            return self._block(f"{stmt.kind} {stmt.name} {{", stmt.expr.kwargs, comments, trailing)
        if isinstance(stmt, ast.Import):
            return [_text(c) for c in comments] + [f"import {_quote(stmt.path)}" + _trail(trailing)]
        if isinstance(stmt, ast.Param):
            head = f"param {stmt.name} {'~' if stmt.searched else '='} "
            return self._value(head, stmt.expr, "", comments, "", trailing)
        if isinstance(stmt, ast.Decl):
            return self._value(f"{stmt.kind} {stmt.name} = ", stmt.expr, "", comments, "", trailing)
        raise TypeError(f"cannot print {stmt!r}")  # pragma: no cover

    def _block(self, opening: str, fields: Sequence[ast.Kwarg], comments, trailing) -> list[str]:
        items = [(f"{f.name} = ", f.value, f.span) for f in fields]
        if not items and not comments:
            return [opening + "}" + _trail(trailing)]
        return self._seq(opening, items, "}", "", "", comments, trailing, block=True)

    def _value(self, head: str, expr: ast.Expr, indent: str, comments: list[ast.Comment], suffix: str,
               trailing: ast.Comment | None) -> list[str]:
        """`indent head expr suffix  # trailing`, broken over lines when too long or holding comments."""
        flat = indent + head + format_expr(expr) + suffix
        found = _target(expr)
        inner = [c for c in comments if found is not None and _inside(c, found[0].span)]
        if found is None or not _items(found[0]) and not inner or (not inner and len(flat) <= MAX_WIDTH):
            return [indent + _text(c) for c in comments] + [flat + _trail(trailing)]
        target, after = found
        hoisted = [indent + _text(c) for c in comments if c not in inner]
        # the target is the leftmost part of expr (expr is the target or target.member...)
        opening = indent + head + _opening(target)
        closing = _closing(target) + after + suffix
        return hoisted + self._seq(opening, _items(target), closing, indent, ",", inner, trailing, block=False)

    def _seq(self, opening: str, items: list[_Item], closing: str, indent: str, sep: str,
             comments: list[ast.Comment], trailing: ast.Comment | None, block: bool) -> list[str]:
        """An opening line, one item per line (indented), the closing line."""
        inner_indent = indent + INDENT
        slots = _assign(comments, [span for _, _, span in items])
        lines = [opening + _trail(slots.header)]
        prev_end = None
        for k, (head, value, span) in enumerate(items):
            if block:
                lo = prev_end + 1 if prev_end is not None else span.line
                lines += self._gap(slots.leading[k], lo, span.line, inner_indent, at_start=k == 0)
            else:
                lines += [inner_indent + _text(c) for c in slots.leading[k]]
            lines += self._value(head, value, inner_indent, slots.inner[k], sep, slots.trailing[k])
            prev_end = span.end_line
        if block and items:
            hi = slots.dangling[-1].line if slots.dangling else 0
            tail = self._gap(slots.dangling, prev_end + 1, hi, inner_indent, at_start=False)
            while tail and tail[-1] == "":
                tail.pop()
            lines += tail
        else:
            lines += [inner_indent + _text(c) for c in slots.dangling]
        lines.append(indent + closing + _trail(trailing))
        return lines
