"""Readers for the data-source operators. Every problem with a file is an `OpError` naming the file
and, where there is one, the line: users see `data/math.jsonl:17: ...`, never a traceback."""

from __future__ import annotations

import csv as _csv
import io
import json
import os
import random
from pathlib import Path
from typing import Sequence

from expc.runtime.api import OpError


def shown(path: str) -> str:
    """The path as users should read it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _read_utf8(path: str, field: str = "path") -> str:
    p = Path(path)
    path = shown(path)
    if not p.exists():
        raise OpError(f"{path}: no such file", field=field)
    if p.is_dir():
        raise OpError(f"{path}: is a directory, expected a file", field=field)
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise OpError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {col})",
            field=field,
            hint="convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8`",
        ) from None


def _nonempty(examples: list[str], path: str, what: str, field: str = "path") -> list[str]:
    if not examples:
        raise OpError(f"{path}: empty source: no {what}", field=field)
    return examples


def read_text(path: str, chunk: str = "line") -> list[str]:
    """Examples of a text file: one per non-blank line, one per blank-line-separated paragraph, or the
    whole file as one example."""
    text = _read_utf8(path)
    path = shown(path)
    if chunk == "line":
        examples = [line for line in text.splitlines() if line.strip()]
        what = "non-blank lines"
    elif chunk == "paragraph":
        examples, cur = [], []
        for line in text.splitlines():
            if line.strip():
                cur.append(line)
            elif cur:
                examples.append("\n".join(cur))
                cur = []
        if cur:
            examples.append("\n".join(cur))
        what = "paragraphs"
    else:  # "file"
        examples = [text] if text.strip() else []
        what = "text"
    return _nonempty(examples, path, what)


def read_jsonl(path: str, field: str = "text") -> list[str]:
    """The string `field` of every JSON object, one object per non-blank line."""
    text = _read_utf8(path)
    path = shown(path)
    examples = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise OpError(f"{path}:{lineno}: malformed JSON line: {e.msg} (column {e.colno})", field="path") from None
        if not isinstance(obj, dict):
            raise OpError(f"{path}:{lineno}: expected a JSON object, found {type(obj).__name__}", field="path")
        if field not in obj:
            keys = ", ".join(sorted(obj)) or "none"
            raise OpError(f"{path}:{lineno}: missing field {field!r} (fields: {keys})", field="field")
        value = obj[field]
        if not isinstance(value, str):
            raise OpError(
                f"{path}:{lineno}: field {field!r} is a {type(value).__name__}, expected a string", field="field"
            )
        examples.append(value)
    return _nonempty(examples, path, "JSON lines")


def read_csv(path: str, column: str = "text") -> list[str]:
    """The `column` of every row of a CSV file with a header row."""
    text = _read_utf8(path)
    path = shown(path)
    reader = _csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
        if header is None:
            raise OpError(f"{path}: empty source: no header row", field="path")
        if column not in header:
            raise OpError(f"{path}:1: no column {column!r} (columns: {', '.join(header)})", field="column")
        examples = []
        for row in reader:
            value = row.get(column)
            if value is None:
                raise OpError(f"{path}:{reader.line_num}: row has no value for column {column!r}", field="path")
            if value.strip():
                examples.append(value)
    except _csv.Error as e:
        raise OpError(f"{path}:{reader.line_num}: malformed CSV: {e}", field="path") from None
    return _nonempty(examples, path, "rows")


def arithmetic(n: int, digits: int, seed: int, ops: str = "+") -> list[str]:
    """`n` lines like `123+45=168`: operands with 1..digits digits (uniform in the number of digits,
    then in the value), the operator drawn from `ops`."""
    rng = random.Random(seed)

    def operand() -> int:
        d = rng.randint(1, digits)
        return rng.randint(0 if d == 1 else 10 ** (d - 1), 10**d - 1)

    out = []
    for _ in range(n):
        a, b, o = operand(), operand(), rng.choice(ops)
        c = a + b if o == "+" else a - b if o == "-" else a * b
        out.append(f"{a}{o}{b}={c}")
    return out


def mix(
    sources: Sequence[list[str]], weights: Sequence[float] | None, n: int | None, seed: int, unit: str = "examples"
) -> list[str]:
    """A shuffled mixture. Without weights: every example of every source once. With weights, source
    i gets a share wᵢ/Σw of the mixture, measured in examples or in UTF-8 bytes (`unit`), of a total
    of `n` units (default: all sources' total). Its examples come from a seeded permutation of it,
    cycled (repeating examples) if it has too few."""
    rng = random.Random(seed)
    if weights is None:
        out = [ex for src in sources for ex in src]
    else:
        sizes = [[1 if unit == "examples" else len(ex.encode("utf-8")) for ex in src] for src in sources]
        total = n if n is not None else sum(sum(s) for s in sizes)
        wsum = float(sum(weights))
        out = []
        for src, size, w in zip(sources, sizes, weights):
            target = total * w / wsum
            order = list(range(len(src)))
            rng.shuffle(order)
            got, i = 0, 0
            # take examples while that brings the total closer to the target
            while src and abs(got + size[order[i % len(src)]] - target) < abs(got - target):
                got += size[order[i % len(src)]]
                out.append(src[order[i % len(src)]])
                i += 1
    rng.shuffle(out)
    return out


def split(examples: list[str], test: float, seed: int) -> tuple[list[str], list[str]]:
    """A seeded random split; `test` is a fraction in (0, 1) or, if ≥ 1, a number of examples."""
    k = int(test) if test >= 1 else round(len(examples) * test)
    k = max(1, k)
    if k >= len(examples):
        raise OpError(
            f"cannot split {len(examples)} examples with test = {test:g}: the train part would be empty", field="test"
        )
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    test_idx = set(order[:k])
    train = [ex for i, ex in enumerate(examples) if i not in test_idx]
    held = [examples[i] for i in sorted(test_idx)]
    return train, held
