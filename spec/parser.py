"""Source text -> syntax tree (spec.ast), with friendly, located syntax errors.

Tokens from expc.spec.lexer go to Lark's LALR parser, whose reduce callbacks build the AST. When a
file does not parse, every top-level statement is re-parsed on its own so that independent syntax
errors are all reported in one pass.
"""

from __future__ import annotations

import ast as pyast
import re
import warnings
from functools import lru_cache

from lark import Token, Transformer, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.parsers.lalr_analysis import Shift

from expc.spec import ast
from expc.spec.lexer import (
    CLOSE,
    KEYWORDS,
    OPEN,
    SYMBOL,
    BracketTracker,
    SyntaxIssue,
    bracket_issue,
    make_span,
    tok_span,
    tokens,
)
from expc.spec.tables import grammar_text, load_parser
from expc.spec.diagnostics import CompileError, Diagnostic, Span, did_you_mean
from expc.spec.types import STATEMENT_KEYWORDS


# How expected terminals are named in messages.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "INT": "a number",
    "FLOAT": "a number",
    "STRING": "a string",
    "_NL": "end of line",
    "$END": "end of file",
    "EQUAL": "'='",
    "TILDE": "'~'",
    "COLON": "':'",
    "COMMA": "','",
    "DOT": "'.'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    **{k: f"'{v}'" for k, v in SYMBOL.items()},
}


class _LarkParser:
    """One LALR parser per process (its tables come from grammar_tables.json); the bracket tracker's
    file name is reset for each parse. Not thread-safe, like the CLI."""

    def __init__(self) -> None:
        self.postlex = BracketTracker("<input>")
        self.transformer = _ToAst("<input>")
        self.lark = load_parser(grammar_text(), transformer=self.transformer)

    def parse(self, text: str, file: str, comments: list[Token]):
        """Tokens from the hand-written lexer (faster than Lark's contextual one) go through
        the bracket tracker to an LALR loop over Lark's tables, whose reduce callbacks build the AST.
        A syntax error is parsed again by Lark's own parser, so that its exception (expected
        terminals, parser state) is Lark's."""
        self.postlex.file = file
        self.transformer.file = file
        n_comments = len(comments)
        try:
            return self._parse_fast(text, file, comments)
        except _NoAction:
            del comments[n_comments:]
        ip = self.lark.parse_interactive("")
        state = ip.parser_state
        actions = state.parse_conf.states
        last = None
        for tok in self.postlex.process(tokens(text, file, comments)):
            # keywords are contextual, as with Lark's lexer: `param` is a NAME where no keyword fits
            kw = KEYWORDS.get(tok) if tok.type == "NAME" else None
            if kw is not None and kw in actions[state.state_stack[-1]]:
                tok.type = kw
            state.feed_token(tok)
            last = tok
        return ip.feed_eof(last)

    def _parse_fast(self, text: str, file: str, comments: list[Token]):
        """Lark's ParserState.feed_token, inlined over tables resolved once: a reduction finds its
        callback, size and goto without hashing Lark's Rule objects (a Python __hash__/__eq__ per
        reduction was a tenth of the parse)."""
        table, gotos, term_cbs, start, end = self._tables()
        states, values = [start], []
        for tok in self.postlex.process(tokens(text, file, comments)):
            if tok.type == "NAME":
                kw = KEYWORDS.get(tok)
                if kw is not None and kw in table[states[-1]]:
                    tok.type = kw
            _feed(tok, table, gotos, term_cbs, states, values)
        # end of input: reduce until the start rule is accepted (_feed's reduce step, written out in
        # both loops rather than called: this is the parser's innermost loop)
        while True:
            act = table[states[-1]].get("$END")
            if act is None or act[0] == 0:
                raise _NoAction()
            _, size, callback, origin = act
            if size:
                s = values[-size:]
                del states[-size:]
                del values[-size:]
            else:
                s = []
            states.append(gotos[states[-1]][origin])
            values.append(callback(s))
            if states[-1] == end:
                return values[-1]

    def _tables(self):
        t = getattr(self, "_resolved", None)
        if t is None:
            conf = self.lark.parse_interactive("").parser_state.parse_conf
            callbacks = conf.callbacks
            table: dict = {}
            gotos: dict = {}
            for st, acts in conf.states.items():
                row, go = {}, {}
                for sym, (action, arg) in acts.items():
                    if action is Shift:
                        row[sym] = (0, arg, None, None)  # shift to state arg
                        go[sym] = arg
                    else:
                        row[sym] = (1, len(arg.expansion), callbacks[arg], arg.origin.name)  # reduce by rule arg
                table[st], gotos[st] = row, go
            term_cbs = {k: v for k, v in callbacks.items() if isinstance(k, str)}
            t = self._resolved = (table, gotos, term_cbs, conf.start_state, conf.end_state)
        return t


class _NoAction(Exception):
    """The fast LALR loop met a token no action accepts: a syntax error for Lark's parser to report."""


def _feed(tok, table, gotos, term_cbs, states, values) -> None:
    ttype = tok.type
    while True:
        act = table[states[-1]].get(ttype)
        if act is None:
            raise _NoAction()
        if act[0] == 0:
            states.append(act[1])
            values.append(tok if ttype not in term_cbs else term_cbs[ttype](tok))
            return
        _, size, callback, origin = act
        if size:
            s = values[-size:]
            del states[-size:]
            del values[-size:]
        else:
            s = []
        value = callback(s)
        states.append(gotos[states[-1]][origin])
        values.append(value)


@lru_cache(maxsize=1)
def _lark() -> _LarkParser:
    return _LarkParser()


class _ToAst(Transformer):
    """Builds the AST inside the LALR parser's reduce callbacks, with no intermediate parse tree (the
    parser keeps every token, so spans come from the first and last child: keywords and brackets
    included). About twice as fast as transforming a tree built with propagated positions."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def __default__(self, data, children, meta):
        return Tree(data, children)  # the _inlined helper rules; the parser splices their children

    def _sp(self, x) -> Span:
        return tok_span(self.file, x) if isinstance(x, Token) else x.span

    def _span(self, children) -> Span:
        first, last = self._sp(children[0]), self._sp(children[-1])
        return make_span(self.file, first.line, first.col, last.end_line, last.end_col)

    def _tspan(self, tok: Token) -> Span:
        return tok_span(self.file, tok)

    @staticmethod
    def _nodes(children) -> list:
        return [c for c in children if not isinstance(c, Token)]

    # -- statements
    def start(self, children):
        return self._nodes(children)

    def experiment(self, c):
        return ast.Experiment(str(c[1]), tuple(self._nodes(c)), self._tspan(c[1]), self._span(c))

    def import_stmt(self, c):
        return ast.Import(_unescape(c[1], self.file), self._tspan(c[1]), self._span(c))

    def param_set(self, c):
        return ast.Param(str(c[1]), c[3], False, self._tspan(c[1]), self._span(c))

    def param_search(self, c):
        return ast.Param(str(c[1]), c[3], True, self._tspan(c[1]), self._span(c))

    def decl(self, c):
        kind, name = c[0], c[1]
        return ast.Decl(str(kind), str(name), c[3], False, self._tspan(kind), self._tspan(name), self._span(c))

    def block(self, c):
        kind, name = c[0], c[1]
        span = self._span(c)
        call = ast.Call(ast.Name(str(kind), self._tspan(kind)), (), tuple(self._nodes(c)), span)
        return ast.Decl(str(kind), str(name), call, True, self._tspan(kind), self._tspan(name), span)

    def field(self, c):
        return ast.Kwarg(str(c[0]), c[2], self._tspan(c[0]), self._span(c))

    kwarg = field

    # -- expressions
    def _bin(op):
        def f(self, c):
            return ast.BinOp(op, c[0], c[2], self._span(c))

        return f

    add, sub, mul, div = _bin("+"), _bin("-"), _bin("*"), _bin("/")

    def neg(self, c):
        return ast.Neg(c[1], self._span(c))

    def member(self, c):
        return ast.Member(c[0], str(c[2]), self._tspan(c[2]), self._span(c))

    def call(self, c):
        func, args = c[0], self._nodes(c[1:])
        pos = tuple(a for a in args if not isinstance(a, ast.Kwarg))
        kws = tuple(a for a in args if isinstance(a, ast.Kwarg))
        seen_kw = False
        for a in args:
            if isinstance(a, ast.Kwarg):
                seen_kw = True
            elif seen_kw:
                raise SyntaxIssue(
                    Diagnostic(
                        "E104",
                        "a positional argument cannot follow a keyword argument",
                        a.span,
                        hint="move it before the keyword arguments, or name it",
                    )
                )
        return ast.Call(func, pos, kws, self._span(c))

    def atom(self, c):
        return c[1]  # "(" expr ")"

    def int(self, c):
        return ast.Int(int(c[0]), str(c[0]), self._tspan(c[0]))

    def float(self, c):
        return ast.Float(float(c[0]), str(c[0]), self._tspan(c[0]))

    def string(self, c):
        return ast.Str(_unescape(c[0], self.file), str(c[0]), self._tspan(c[0]))

    def true(self, c):
        return ast.Bool(True, self._tspan(c[0]))

    def false(self, c):
        return ast.Bool(False, self._tspan(c[0]))

    def none(self, c):
        return ast.NoneLit(self._tspan(c[0]))

    def name(self, c):
        return ast.Name(str(c[0]), self._tspan(c[0]))

    def list(self, c):
        return ast.ListExpr(tuple(self._nodes(c)), self._span(c))

    def record(self, c):
        return ast.RecordExpr(tuple(self._nodes(c)), self._span(c))

    def rfield(self, c):
        key = c[0]
        quoted = key.type == "STRING"
        k = _unescape(key, self.file) if quoted else str(key)
        return ast.RecordField(k, c[2], self._tspan(key), self._span(c), quoted)


def _unescape(tok: Token, file: str) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Python only warns about an unknown escape such as "\q"
            value = pyast.literal_eval(str(tok))
    except (ValueError, SyntaxError, Warning):
        raise SyntaxIssue(Diagnostic("E102", f"invalid escape in string {tok}", tok_span(file, tok)))
    if not isinstance(value, str):  # pragma: no cover - the STRING regex only admits strings
        raise SyntaxIssue(Diagnostic("E102", "not a string", tok_span(file, tok)))
    return value


def parse(text: str, file: str = "<input>") -> ast.Module:
    """Parse one file; raise CompileError with every syntax error found."""
    comments: list[Token] = []
    try:
        stmts = _parse_chunk(text, file, comments)
    except SyntaxIssue as first:
        diags = _recover(text, file) or [first.diag]
        raise CompileError(diags) from None
    lines = text.split("\n")
    blank = frozenset(i + 1 for i, line in enumerate(lines) if not line.strip())
    cmts = tuple(
        ast.Comment(str(c), c.line, c.column, not lines[c.line - 1][: c.column - 1].strip()) for c in comments
    )
    return ast.Module(file, tuple(stmts), cmts, blank)


def _parse_chunk(text: str, file: str, comments: list[Token]) -> list:
    try:
        return _lark().parse(text, file, comments)
    except VisitError as e:
        if isinstance(e.orig_exc, SyntaxIssue):
            raise e.orig_exc from None
        raise
    except UnexpectedInput as e:
        raise SyntaxIssue(_describe(e, text, file)) from None


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "NAME":
        return f"name '{tok}'"
    if tok.type in ("INT", "FLOAT"):
        return f"number {tok}"
    if tok.type == "STRING":
        return f"string {tok}"
    return f"'{tok}'"


def _expected(names) -> str:
    readable = sorted({_TERMINAL_NAMES.get(n, n.lower()) for n in names})
    if not readable:
        return "something else"
    if len(readable) > 6:
        return "an expression or a statement"  # the full set is noise
    return " or ".join(readable) if len(readable) <= 2 else ", ".join(readable[:-1]) + " or " + readable[-1]


def _describe(e: UnexpectedInput, text: str, file: str) -> Diagnostic:
    # bad characters and unterminated strings are reported by the lexer (expc.spec.lexer.tokens)
    if isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            lines = text.split("\n")
            span = Span.point(file, len(lines), len(lines[-1]) + 1)
        else:
            span = tok_span(file, tok)
            if tok.type == "_NL":
                span = Span.point(file, tok.line, tok.column)
        expected = set(e.expected or ())
        stack = _lark().postlex.stack
        if stack:
            expected.discard("_NL")  # newlines are dropped inside brackets: never expected there
        if tok.type in CLOSE:
            # the contextual lexer can reject a closing bracket before the post-lexer sees it
            bracket = bracket_issue(file, stack, tok)
            if bracket is not None:
                return bracket
        if stack and tok.type == "NAME" and tok.column == 1 and tok.line > stack[-1].line:
            opener = stack[-1]
            return Diagnostic(
                "E103",
                f"'{opener.value}' opened at line {opener.line} is not closed before {_describe_token(tok)} "
                f"at line {tok.line}",
                tok_span(file, opener),
                hint=f"add '{SYMBOL[OPEN[opener.type]]}'",
                notes=((f"found {_describe_token(tok)} here", span),),
            )
        message = f"unexpected {_describe_token(tok)}; expected {_expected(expected)}"
        return Diagnostic("E100", message, span, hint=_hint_for(tok, expected, text))
    if isinstance(e, UnexpectedEOF):  # pragma: no cover - LALR reports UnexpectedToken($END)
        return Diagnostic("E100", "unexpected end of file", None)
    return Diagnostic("E100", str(e).splitlines()[0], None)  # pragma: no cover


def _hint_for(tok: Token, expected: set[str], text: str) -> str | None:
    line = text.split("\n")[tok.line - 1] if tok.line else ""
    words = line.split()
    if tok.type == "EQUAL" and len(words) >= 2 and words[1].startswith("="):
        return f"a statement starts with a keyword: did you mean 'param {words[0]} = ...'?"
    if tok.type in ("NAME", "INT", "FLOAT", "STRING") and "EQUAL" in expected and "LBRACE" in expected:
        return "a declaration is 'KIND NAME = EXPR' or 'KIND NAME { FIELD = EXPR ... }'"
    if tok.type == "NAME" and expected <= {"_NL", "$END", "PLUS", "MINUS", "STAR", "SLASH", "DOT", "LPAR"}:
        return "one statement per line: start a new line before it"
    if tok.type == "NAME" and words and words[0] not in STATEMENT_KEYWORDS and tok.column == 1:
        return did_you_mean(str(tok), STATEMENT_KEYWORDS)
    return None


_STATEMENT_START = re.compile(r"(?:%s)[ \t]+[A-Za-z_\"]" % "|".join(STATEMENT_KEYWORDS))


def _statement_chunks(text: str) -> list[tuple[int, str]]:
    """Split text into top-level statements (start line, text), tracking brackets, strings, comments."""
    chunks: list[tuple[int, str]] = []
    depth = 0
    start = 0
    line = 1
    start_line = 1
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] not in '"\n':
                i += 2 if text[i] == "\\" else 1
            if i < n and text[i] == "\n":
                continue
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c == "\n":
            line += 1
            # A line that starts with a statement keyword at column 1 starts a new statement even
            # inside an unclosed bracket: the bracket is reported once and the rest is still checked.
            if depth == 0 or _STATEMENT_START.match(text, i + 1):
                depth = 0
                chunks.append((start_line, text[start:i]))
                start, start_line = i + 1, line
        i += 1
    chunks.append((start_line, text[start:]))
    return [(ln, t) for ln, t in chunks if t.strip() and not t.strip().startswith("#") or "#" not in t and t.strip()]


def _recover(text: str, file: str) -> list[Diagnostic]:
    """Parse each top-level statement alone so every independent syntax error is reported."""
    diags: list[Diagnostic] = []
    last_line = text.count("\n") + 1
    for start_line, chunk in _statement_chunks(text):
        # keep the newline that ends the statement, so an error there says "end of line", not "end of file"
        end = "\n" if start_line + chunk.count("\n") < last_line else ""
        try:
            _parse_chunk("\n" * (start_line - 1) + chunk + end, file, [])
        except SyntaxIssue as issue:
            diags.append(_cut_bracket(issue.diag, text, start_line + chunk.count("\n") + 1, file))
    return diags


def _cut_bracket(d: Diagnostic, text: str, next_line: int, file: str) -> Diagnostic:
    """A bracket left open where the next statement starts: say so, pointing at that statement."""
    if d.code != "E103" or not d.message.endswith("is never closed"):
        return d
    lines = text.split("\n")
    if next_line > len(lines) or not _STATEMENT_START.match(lines[next_line - 1]):
        return d
    word = lines[next_line - 1].split()[0]
    opener = d.message.split("'")[1]
    here = Span(file, next_line, 1, next_line, 1 + len(word))
    return Diagnostic(
        "E103",
        f"'{opener}' opened at line {d.span.line} is not closed before name '{word}' at line {next_line}",
        d.span, hint=d.hint, notes=((f"found name '{word}' here", here),),
    )
