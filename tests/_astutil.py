"""Helpers for front-end tests: syntax trees without their spans, and a compact s-expression dump."""

from __future__ import annotations

import dataclasses

from expc.spec import ast


def strip(node):
    """A syntax tree as nested tuples, with every span (and the raw text of literals) left out, so two
    parses of differently laid out text compare equal when they mean the same tree."""
    if isinstance(node, ast.Module):
        return ("Module", strip(node.stmts), tuple(c.text.rstrip() for c in node.comments))
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(
            (f.name, strip(getattr(node, f.name)))
            for f in dataclasses.fields(node)
            if f.name != "span" and not f.name.endswith("_span")
        )
    if isinstance(node, (tuple, list)):
        return tuple(strip(x) for x in node)
    return node


def sexpr(e) -> str:
    """Expressions and statements in prefix form: `(+ a (* 0.5 b))`, `(call f a (= k 1))`."""
    if isinstance(e, ast.Int):
        return f"int:{e.text}"
    if isinstance(e, ast.Float):
        return f"float:{e.text}"
    if isinstance(e, ast.Str):
        return f"str:{e.value!r}"
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.NoneLit):
        return "none"
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Member):
        return f"(. {sexpr(e.obj)} {e.name})"
    if isinstance(e, ast.Kwarg):
        return f"(= {e.name} {sexpr(e.value)})"
    if isinstance(e, ast.Call):
        parts = [sexpr(e.func), *(sexpr(a) for a in e.args), *(sexpr(k) for k in e.kwargs)]
        return "(call " + " ".join(parts) + ")"
    if isinstance(e, ast.BinOp):
        return f"({e.op} {sexpr(e.left)} {sexpr(e.right)})"
    if isinstance(e, ast.Neg):
        return f"(neg {sexpr(e.operand)})"
    if isinstance(e, ast.ListExpr):
        return "[" + " ".join(sexpr(i) for i in e.items) + "]"
    if isinstance(e, ast.RecordExpr):
        return "{" + " ".join(f"{f.key}:{sexpr(f.value)}" for f in e.fields) + "}"
    if isinstance(e, ast.Experiment):
        return f"(experiment {e.name} " + " ".join(sexpr(f) for f in e.fields) + ")"
    if isinstance(e, ast.Import):
        return f"(import {e.path!r})"
    if isinstance(e, ast.Param):
        return f"(param {e.name} {'~' if e.searched else '='} {sexpr(e.expr)})"
    if isinstance(e, ast.Decl):
        return f"({e.kind}{'{}' if e.block else ''} {e.name} {sexpr(e.expr)})"
    raise TypeError(e)
