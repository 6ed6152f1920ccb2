"""The value of a lowered expression: its type, its IR value (expc.spec.ir.Value), and pending algebra."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from expc.spec.diagnostics import Span
from expc.spec.ir import is_const

NUM = {"int", "number"}


@dataclass
class Typed:
    type: str
    value: Any  # an expc.spec.ir Value (None while a pending algebra tree stands for it)
    span: Span
    items: list["Typed"] | None = None  # element values of a list expression
    tree: Any = None  # pending merge-algebra tree (type "model"), see ExprLowerer.materialize

    @property
    def const(self) -> bool:
        return is_const(self.value)


@dataclass
class Leaf:
    """A model operand inside a pending algebra tree."""

    typed: Typed

