"""Helpers over the tagged JSON values of the IR (see expc.spec.ir): walk, substitute, evaluate."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator


def is_tagged(value: Any, tag: str) -> bool:
    return isinstance(value, dict) and tag in value


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every sub-value with its dotted path ("models.1", "expr.args.0")."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}.{i}" if path else str(i))


def refs(value: Any) -> Iterator[dict]:
    """Every {"$ref": ...} inside a value."""
    for _, v in walk(value):
        if is_tagged(v, "$ref"):
            yield v


def params(value: Any) -> set[str]:
    return {v["$param"] for _, v in walk(value) if is_tagged(v, "$param")}


def transform(value: Any, fn: Callable[[Any], Any | None]) -> Any:
    """Rebuild value top-down: fn returns a replacement for a sub-value, or None to recurse into it."""
    repl = fn(value)
    if repl is not None:
        return repl
    if isinstance(value, dict):
        return {k: transform(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [transform(v, fn) for v in value]
    return value


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
