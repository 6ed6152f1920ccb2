"""Text -> tokens for the LALR parser (expc.spec.parser): one regex for every terminal of grammar.lark
(a test checks it against Lark's own lexer), and a bracket tracker that drops newlines inside
brackets and reports brackets that do not match."""

from __future__ import annotations

import re
from typing import Iterator

from lark import Token

from expc.spec.diagnostics import Diagnostic, Span

OPEN = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
CLOSE = {v: k for k, v in OPEN.items()}
SYMBOL = {"LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]", "LBRACE": "{", "RBRACE": "}"}


class SyntaxIssue(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag


class BracketTracker:
    """Drops newlines inside brackets; reports a closing bracket that does not match its opener."""

    def __init__(self, file: str):
        self.file = file
        self.stack: list[Token] = []

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        self.stack = stack = []  # read by _describe: an error inside an unclosed bracket says so
        for tok in stream:
            if tok.type in OPEN:
                stack.append(tok)
            elif tok.type in CLOSE:
                issue = bracket_issue(self.file, stack, tok)
                if issue is not None:
                    raise SyntaxIssue(issue)
                stack.pop()
            elif tok.type == "_NL" and stack:
                continue
            yield tok
        if stack:
            opener = stack[-1]
            raise SyntaxIssue(
                Diagnostic(
                    "E103",
                    f"'{opener.value}' is never closed",
                    tok_span(self.file, opener),
                    hint=f"add '{SYMBOL[OPEN[opener.type]]}'",
                )
            )


def bracket_issue(file: str, stack: list[Token], tok: Token) -> Diagnostic | None:
    """The diagnostic for closing bracket tok given the open brackets, or None when it matches."""
    if not stack:
        return Diagnostic("E103", f"unmatched '{tok.value}': no bracket is open here", tok_span(file, tok))
    opener = stack[-1]
    if OPEN[opener.type] == tok.type:
        return None
    return Diagnostic(
        "E103",
        f"'{tok.value}' does not match the '{opener.value}' opened at line {opener.line}",
        tok_span(file, tok),
        hint=f"close it with '{SYMBOL[OPEN[opener.type]]}'",
        notes=(("the bracket opened here", tok_span(file, opener)),),
    )


def _span_maker():
    """Span(...) without its frozen dataclass __init__ (five object.__setattr__ calls): the parser makes
    one per token and per node, and this is 3-4x faster. Equal to Span(...) in every way; Span itself
    when it has no __dict__ (slots)."""
    if not hasattr(object.__new__(Span), "__dict__"):
        return Span
    new = object.__new__

    def make(file: str, line: int, col: int, end_line: int, end_col: int) -> Span:
        s = new(Span)
        d = s.__dict__
        d["file"], d["line"], d["col"], d["end_line"], d["end_col"] = file, line, col, end_line, end_col
        return s

    return make


make_span = _span_maker()


def tok_span(file: str, tok: Token) -> Span:
    end_line = tok.end_line or tok.line
    end_col = tok.end_column or (tok.column + len(tok.value))
    return make_span(file, tok.line, tok.column, end_line, end_col)



KEYWORDS = {w: w.upper() for w in ("experiment", "import", "param", "true", "false", "none")}
OPS = {"(": "LPAR", ")": "RPAR", "[": "LSQB", "]": "RSQB", "{": "LBRACE", "}": "RBRACE", "=": "EQUAL",
        "~": "TILDE", ",": "COMMA", ":": "COLON", ".": "DOT", "+": "PLUS", "-": "MINUS", "*": "STAR",
        "/": "SLASH"}
# One pass of one regex; the alternatives mirror the terminals of grammar.lark (a test checks that the
# tokens agree with Lark's own lexer on the examples).
TOKEN_RE = re.compile(
    r"(?P<_NL>(?:\r?\n[\t ]*)+)"
    r"|(?P<WS>[\t \f]+)"
    r"|(?P<COMMENT>\#[^\n]*)"
    r"|(?P<FLOAT>(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)"
    r"|(?P<INT>[0-9]+)"
    r"|(?P<NAME>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<STRING>\"(?:[^\"\\\n]|\\.)*\")"
    r"|(?P<OP>[()\[\]{}=~,:.+\-*/])"
)


# Token(...) goes through a *args/**kwargs __new__ that checks for a deprecated keyword; the classmethod
# behind it builds the same token (a fifth of the lexer's time on a 5,000-statement file).
_token = getattr(Token, "_future_new", Token)


def tokens(text: str, file: str, comments: list[Token]):
    line, line_start, pos, n = 1, 0, 0, len(text)
    match = TOKEN_RE.match
    Token = _token
    while pos < n:
        m = match(text, pos)
        if m is None:
            col = pos - line_start + 1
            if text[pos] == '"':
                end = text.find("\n", pos)
                end_col = (end if end >= 0 else n) - line_start + 1
                raise SyntaxIssue(Diagnostic(
                    "E102", "unterminated string", Span(file, line, col, line, end_col),
                    hint="close it with '\"' on the same line (strings cannot span lines; use \\n)"))
            raise SyntaxIssue(Diagnostic("E101", f"unexpected character {text[pos]!r}", Span.point(file, line, col)))
        kind = m.lastgroup
        end = m.end()
        value = m.group()
        col = pos - line_start + 1
        if kind == "_NL":
            breaks = value.count("\n")
            tok = Token("_NL", value, pos, line, col, line + breaks, len(value) - value.rfind("\n"), end)
            line += breaks
            line_start = pos + value.rfind("\n") + 1
            yield tok
        elif kind == "WS":
            pass
        elif kind == "COMMENT":
            comments.append(Token("COMMENT", value, pos, line, col, line, col + len(value), end))
        else:
            tok_type = OPS[value] if kind == "OP" else kind
            yield Token(tok_type, value, pos, line, col, line, col + len(value), end)
        pos = end


