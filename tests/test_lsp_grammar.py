"""The VS Code extension's TextMate grammar (editors/vscode/syntaxes/exp.tmLanguage.json) highlights
what expc's own lexer and parser see: every token of GRAMMAR.md's snippets and of the examples gets
the scope of its role (a declaration's kind and name, a call, an argument name, a member, a record
key, a param, a literal, a comment, an operator).

The grammar's regexes are run by a small TextMate interpreter here (match rules with captures,
begin/end rules, includes; earliest match wins, ties to the first rule), so this runs without node.
editors/vscode/tests/ has annotated snippets for `vscode-tmgrammar-test`, VS Code's own engine
(`npm run test:grammar` in editors/vscode)."""

from __future__ import annotations

import json
import re

import pytest

from conftest import EXAMPLES, ROOT
from expc.spec import ast
from expc.spec.lexer import tokens
from expc.spec.parser import parse

GRAMMAR = json.loads((ROOT / "editors" / "vscode" / "syntaxes" / "exp.tmLanguage.json").read_text())


class TextMate:
    """Enough of TextMate's tokenizer for this grammar: line by line, a stack of begin/end rules."""

    def __init__(self, grammar: dict):
        self.repo = grammar["repository"]
        self.top = self._rules(grammar["patterns"])

    def _rules(self, patterns: list[dict]) -> list[dict]:
        out = []
        for p in patterns:
            if "include" in p:
                target = self.repo[p["include"].lstrip("#")]
                out += self._rules(target["patterns"]) if "patterns" in target and "begin" not in target \
                    else self._rules([target])
            else:
                rule = dict(p)
                for key in ("match", "begin", "end"):
                    if key in rule:
                        rule["_" + key] = re.compile(rule[key])
                if "begin" in rule:
                    rule["_inner"] = self._rules(rule.get("patterns", []))
                out.append(rule)
        return out

    def line(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, scope) of every scoped piece of one line (scopes of nested rules included)."""
        out: list[tuple[int, int, str]] = []
        pos, n = 0, len(text)
        while pos <= n:
            best = None
            for rule in self.top:
                m = (rule.get("_match") or rule["_begin"]).search(text, pos)
                if m is not None and (best is None or m.start() < best[1].start()):
                    best = (rule, m)
            if best is None or best[1].end() == best[1].start() == n:
                break
            rule, m = best
            if "_match" in rule:
                self._scope(rule, m, out, rule.get("captures", {}))
                pos = max(m.end(), m.start() + 1)
            else:
                pos = self._region(rule, m, text, out)
        return out

    def _scope(self, rule: dict, m: re.Match, out: list, captures: dict) -> None:
        if rule.get("name"):
            out.append((m.start(), m.end(), rule["name"]))
        for group, cap in captures.items():
            if m.group(int(group)) is not None and m.start(int(group)) < m.end(int(group)):
                out.append((m.start(int(group)), m.end(int(group)), cap["name"]))

    def _region(self, rule: dict, begin: re.Match, text: str, out: list) -> int:
        self._scope({}, begin, out, rule.get("beginCaptures", {}))
        pos = begin.end()
        while True:
            end = rule["_end"].search(text, pos)
            inner = None
            for r in rule["_inner"]:
                m = r["_match"].search(text, pos)
                if m is not None and (end is None or m.start() < end.start()) and (
                        inner is None or m.start() < inner[1].start()):
                    inner = (r, m)
            if inner is not None:
                self._scope(inner[0], inner[1], out, inner[0].get("captures", {}))
                pos = inner[1].end()
                continue
            stop = end.end() if end is not None else len(text)
            self._scope({}, end, out, rule.get("endCaptures", {})) if end is not None else None
            out.append((begin.start(), stop, rule["name"]))
            return stop


def scopes_of(text: str) -> dict[tuple[int, int], list[str]]:
    """Every (line, column) (1-based) -> the scopes covering it."""
    tm = TextMate(GRAMMAR)
    out: dict[tuple[int, int], list[str]] = {}
    for i, line in enumerate(text.split("\n"), start=1):
        for start, end, scope in tm.line(line):
            for c in range(start, end):
                out.setdefault((i, c + 1), []).extend(scope.split())
    return out


def roles(module: ast.Module) -> dict[tuple[int, int], str]:
    """The scope each name should get, by the (line, column) where it starts, from the syntax tree."""
    out: dict[tuple[int, int], str] = {}

    def at(span, scope):
        out.setdefault((span.line, span.col), scope)

    def expr(e):
        if isinstance(e, ast.Name):
            at(e.span, "variable.other")
        elif isinstance(e, ast.Member):
            expr(e.obj)
            at(e.name_span, "variable.other.member")
        elif isinstance(e, ast.Call):
            at(e.func.span, "entity.name.function.call") if isinstance(e.func, ast.Name) else expr(e.func)
            for a in e.args:
                expr(a)
            for k in e.kwargs:
                at(k.name_span, "variable.parameter")
                expr(k.value)
        elif isinstance(e, ast.BinOp):
            expr(e.left)
            expr(e.right)
        elif isinstance(e, ast.Neg):
            expr(e.operand)
        elif isinstance(e, ast.ListExpr):
            for i in e.items:
                expr(i)
        elif isinstance(e, ast.RecordExpr):
            for f in e.fields:
                at(f.key_span, "support.type.property-name")
                expr(f.value)

    for s in module.stmts:
        if isinstance(s, ast.Experiment):
            at(s.span, "keyword.other.experiment")
            at(s.name_span, "entity.name.namespace")
            for f in s.fields:
                at(f.name_span, "variable.parameter")
                expr(f.value)
        elif isinstance(s, ast.Import):
            at(s.span, "keyword.control.import")
        elif isinstance(s, ast.Param):
            at(s.span, "storage.type.param")
            at(s.name_span, "entity.name.variable.param")
            expr(s.expr)
        elif isinstance(s, ast.Decl):
            at(s.kind_span, "storage.type.kind")
            at(s.name_span, "entity.name.variable.declaration")
            if s.block:
                for k in s.expr.kwargs:
                    at(k.name_span, "variable.parameter")
                    expr(k.value)
            else:
                expr(s.expr)
    return out


_BY_TOKEN = {
    "STRING": "string.quoted.double", "INT": "constant.numeric.integer", "FLOAT": "constant.numeric.float",
    "TRUE": "constant.language", "FALSE": "constant.language", "NONE": "constant.language",
    "PLUS": "keyword.operator.arithmetic", "MINUS": "keyword.operator.arithmetic",
    "STAR": "keyword.operator.arithmetic", "SLASH": "keyword.operator.arithmetic",
    "EQUAL": "keyword.operator.assignment", "TILDE": "keyword.operator.distribution",
    "COMMA": "punctuation.separator", "COLON": "punctuation.separator.key-value", "DOT": "punctuation.accessor",
    "LPAR": "punctuation.parenthesis", "RPAR": "punctuation.parenthesis",
    "LSQB": "punctuation.brackets.square", "RSQB": "punctuation.brackets.square",
    "LBRACE": "punctuation.brackets.curly", "RBRACE": "punctuation.brackets.curly",
}
_LITERALS = {"true": "constant.language", "false": "constant.language", "none": "constant.language"}


def _doc_snippets() -> list[tuple[str, str]]:
    doc = (ROOT / "GRAMMAR.md").read_text(encoding="utf-8")
    return [(f"GRAMMAR.md:{doc[:m.start()].count(chr(10)) + 2}", m.group(1))
            for m in re.finditer(r"```exp\n(.*?)```", doc, re.S)]


SOURCES = _doc_snippets() + [(p.name, p.read_text()) for p in sorted(EXAMPLES.glob("*.exp"))]


def test_there_is_something_to_highlight():
    assert len(SOURCES) >= 12


@pytest.mark.parametrize("name,text", SOURCES, ids=[s[0] for s in SOURCES])
def test_every_token_gets_the_scope_of_its_role(name, text):
    module = parse(text, name)
    expected_names = roles(module)
    scopes = scopes_of(text)
    comments: list = []
    wrong = []
    for tok in tokens(text, name, comments):
        if tok.type == "_NL":
            continue
        if tok.type == "NAME":
            want = _LITERALS.get(str(tok)) or expected_names.get((tok.line, tok.column))
        else:
            want = _BY_TOKEN[tok.type]
        assert want is not None, f"{name}:{tok.line}:{tok.column}: no role for {tok!r}"
        for col in range(tok.column, tok.end_column):
            got = scopes.get((tok.line, col), [])
            if not any(s == want + ".exp" or s.startswith(want + ".") for s in got):
                wrong.append(f"{tok.line}:{col} {str(tok)!r}: want {want}, got {got}")
                break
    for c in comments:
        got = scopes.get((c.line, c.column), [])
        if not any(s.startswith("comment.line") for s in got):
            wrong.append(f"{c.line}:{c.column} comment: got {got}")
    assert not wrong, f"{name}:\n" + "\n".join(wrong[:20])


def test_strings_escapes_and_an_unclosed_string():
    scopes = scopes_of('data a = text("a\\"b\\n.txt")  # c\nparam p = "open\nparam q = 1\n')
    assert "constant.character.escape.exp" in scopes[(1, 17)]  # \"
    assert "comment.line.number-sign.exp" in scopes[(1, 31)]
    assert "string.quoted.double.exp" in scopes[(2, 13)]
    assert "storage.type.param.exp" in scopes[(3, 1)]  # the next line is not part of the open string


TMGRAMMAR_TEST = ROOT / "editors" / "vscode" / "node_modules" / ".bin" / "vscode-tmgrammar-test"


@pytest.mark.skipif(not TMGRAMMAR_TEST.exists(), reason="needs `npm install` in editors/vscode")
def test_annotated_snippets_with_vscode_tmgrammar_test():
    import subprocess

    vscode = ROOT / "editors" / "vscode"
    out = subprocess.run([str(TMGRAMMAR_TEST), "-g", "syntaxes/exp.tmLanguage.json", "tests/syntax.exp"],
                         cwd=vscode, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
