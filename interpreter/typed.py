"""The value of a lowered expression: its type, its symbolic JSON value, and pending merge algebra."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from expc.interpreter import symbolic
from expc.spec.diagnostics import Span

NUM = {"int", "number"}


@dataclass
class Typed:
    type: str
    value: Any
    span: Span
    items: list["Typed"] | None = None  # element values of a list expression
    tree: Any = None  # pending merge-algebra tree (type "model"), see ExprLowerer.materialize

    @property
    def const(self) -> bool:
        return not any(
            isinstance(v, dict) and ({"$ref", "$param", "$arith"} & v.keys())
            for _, v in symbolic.walk(self.value)
        )


@dataclass
class Leaf:
    """A model operand inside a pending algebra tree."""

    typed: Typed

