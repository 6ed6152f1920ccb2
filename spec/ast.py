"""The syntax tree: small frozen dataclasses, each carrying the Span of the text it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from expc.spec.diagnostics import Span


# ---- expressions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Int:
    value: int
    text: str
    span: Span


@dataclass(frozen=True)
class Float:
    value: float
    text: str
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    raw: str  # as written, with quotes and escapes (the printer keeps it)
    span: Span


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True)
class NoneLit:
    """`none`: no value (e.g. `pruner = none`)."""

    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Member:
    """obj.name: a split's .train, a search's .best, a record's field."""

    obj: "Expr"
    name: str
    name_span: Span
    span: Span


@dataclass(frozen=True)
class Kwarg:
    name: str
    value: "Expr"
    name_span: Span
    span: Span


@dataclass(frozen=True)
class Call:
    """op(positional, key = value). The callee is a Name (an operator, or a node to re-instantiate
    with params bound) or a Member."""

    func: "Expr"
    args: tuple["Expr", ...]
    kwargs: tuple[Kwarg, ...]
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # "+", "-", "*", "/"
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class ListExpr:
    items: tuple["Expr", ...]
    span: Span


@dataclass(frozen=True)
class RecordField:
    key: str
    value: "Expr"
    key_span: Span
    span: Span
    quoted: bool = False


@dataclass(frozen=True)
class RecordExpr:
    fields: tuple[RecordField, ...]
    span: Span


Expr = Union[Int, Float, Str, Bool, NoneLit, Name, Member, Call, BinOp, Neg, ListExpr, RecordExpr]


# ---- statements --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    name: str
    fields: tuple[Kwarg, ...]
    name_span: Span
    span: Span


@dataclass(frozen=True)
class Import:
    path: str
    path_span: Span
    span: Span


@dataclass(frozen=True)
class Param:
    """`param NAME = EXPR` (searched=False) or `param NAME ~ DIST` (searched=True)."""

    name: str
    expr: Expr
    searched: bool
    name_span: Span
    span: Span


@dataclass(frozen=True)
class Decl:
    """`KIND NAME = EXPR`, or `KIND NAME { f = e ... }` (block=True), which means
    `KIND NAME = KIND(f = e, ...)`: expr is then that Call, with func = Name(KIND)."""

    kind: str
    name: str
    expr: Expr
    block: bool
    kind_span: Span
    name_span: Span
    span: Span


Stmt = Union[Experiment, Import, Param, Decl]


@dataclass(frozen=True)
class Comment:
    text: str  # including '#'
    line: int
    col: int
    own_line: bool  # nothing but whitespace before it on its line


@dataclass(frozen=True)
class Module:
    """One parsed .exp file."""

    file: str
    stmts: tuple[Stmt, ...]
    comments: tuple[Comment, ...]
    # line numbers that are blank in the source (the printer keeps single blank lines between statements)
    blank_lines: frozenset[int] = frozenset()
