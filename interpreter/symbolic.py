"""Scalar helpers shared by the checker and the planner: arithmetic, number display, canonical JSON.
(Values of the IR are walked with expc.spec.ir.walk / transform / to_wire.)"""

from __future__ import annotations

import json
from typing import Any


def arith(op: str, args: list[Any]) -> Any:
    if op == "neg":
        return -args[0]
    a, b = args
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    raise ValueError(op)  # pragma: no cover


def plain_number(x: float) -> Any:
    """A bound as the user most likely wrote it: 1.0 -> 1 (validated models turn ints into floats)."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


def canonical(value: Any) -> str:
    """A stable text for hashing: sorted keys, no whitespace; floats by repr (shortest round-trip)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
