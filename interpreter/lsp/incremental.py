"""Parsing for the language server: statement by statement, reusing what did not change.

A keystroke changes one statement of a file; the others parse to the same trees as before, only
moved up or down by the lines inserted above them. `StatementParser` splits a text into top-level
statements (`split_statements`), parses each statement it has not seen with `spec.parser.parse`,
and moves the trees of the others to their new lines. The result is the module `parse(text)` gives,
or, for a text that does not parse, `parse(text)`'s own CompileError (the whole text is parsed again
then, so diagnostics are exactly `expc check`'s). `tolerant` gives the statements that do parse, for
navigation in a file that is half-typed.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import threading
from typing import Any

from expc.spec import ast
from expc.spec.diagnostics import CompileError, Span
from expc.spec.parser import parse
from expc.spec.types import STATEMENT_KEYWORDS

# What matters to statement boundaries: strings, comments and brackets (everything else is skipped).
_SCAN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[()\[\]{}]')
# A line that starts a statement even inside an unclosed bracket (as spec.parser's error recovery
# does): a statement keyword at column 1 followed by a name or a string.
_STATEMENT_START = re.compile(r"(?:%s)[ \t]+[A-Za-z_\"]" % "|".join(STATEMENT_KEYWORDS))


def split_statements(text: str) -> list[tuple[int, str]]:
    """(first line, text with its line ends) of each top-level statement, comment or blank run.
    Boundaries are newlines outside brackets, and lines starting with a statement keyword."""
    out: list[tuple[int, str]] = []
    lines = text.splitlines(keepends=True)
    depth = 0
    start = 0  # index of the first line of the current chunk
    scan = _SCAN.finditer
    for i, line in enumerate(lines):
        if depth and _STATEMENT_START.match(line):
            out.append((start + 1, "".join(lines[start:i])))
            start, depth = i, 0
        if "(" in line or "[" in line or "{" in line or ")" in line or "]" in line or "}" in line:
            for m in scan(line):
                c = m.group()
                if c in "([{":
                    depth += 1
                elif c in ")]}":
                    depth = max(0, depth - 1)
        if depth == 0:
            out.append((start + 1, "".join(lines[start:i + 1])))
            start = i + 1
    if start < len(lines):
        out.append((start + 1, "".join(lines[start:])))
    return out


@dataclasses.dataclass(frozen=True)
class _Part:
    line: int  # the first line it was parsed at
    stmts: tuple
    comments: tuple


class StatementParser:
    """A `parse(text, file)` that remembers statements by their text (per file). Thread-safe."""

    def __init__(self, max_files: int = 64) -> None:
        self._parts: dict[str, dict[str, _Part]] = {}
        self._lock = threading.Lock()
        self.max_files = max_files
        self.reused = self.parsed = 0  # counters for the benchmark and tests
        self._last: tuple[str, str, ast.Module, list] | None = None  # the last text parsed, and its result

    def __call__(self, text: str, file: str = "<input>") -> ast.Module:
        module, failed = self._parse(text, file)
        if failed:
            # Raise what parse(text) raises, from a text with only the broken statements and the one
            # after each (an unclosed bracket is reported as not closed before it), every other line
            # blank: each error is found where it is, without parsing the whole file twice over.
            parse(_broken_only(text, failed), file)
            return parse(text, file)  # not reached: that text does not parse either
        return module

    def tolerant(self, text: str, file: str = "<input>") -> tuple[ast.Module, list[tuple[int, str]]]:
        """The statements that parse, and the (line, text) chunks that do not."""
        return self._parse(text, file)

    def _parse(self, text: str, file: str) -> tuple[ast.Module, list[tuple[int, str]]]:
        last = self._last
        if last is not None and last[0] == file and last[1] == text:  # `tolerant`, then the check's parse
            return last[2], last[3]
        with self._lock:
            old = self._parts.get(file, {})
            new: dict[str, _Part] = {}
            stmts: list = []
            comments: list = []
            failed: list[tuple[int, str]] = []
            chunks = [(line, chunk) for line, chunk in split_statements(text) if chunk.strip()]
            missing = [(line, chunk) for line, chunk in chunks if chunk not in old]
            new.update(self._parse_missing(missing, file, failed))
            for line, chunk in chunks:
                part = new.get(chunk) or old.get(chunk)
                if part is None:
                    continue  # it does not parse: in `failed`
                delta = line - part.line
                if delta:
                    part = _Part(line, tuple(_shift(s, delta) for s in part.stmts),
                                 tuple(dataclasses.replace(c, line=c.line + delta) for c in part.comments))
                new.setdefault(chunk, part)  # at its newest place: the next edit moves only what it moves
                stmts.extend(part.stmts)
                comments.extend(part.comments)
            self.reused += len(chunks) - len(missing)
            self._parts.pop(file, None)
            self._parts[file] = new
            while len(self._parts) > self.max_files:
                self._parts.pop(next(iter(self._parts)))
        lines = text.split("\n")
        blank = frozenset(i + 1 for i, ln in enumerate(lines) if not ln.strip())
        module = ast.Module(file, tuple(stmts), tuple(comments), blank)
        self._last = (file, text, module, failed)
        return module, failed


    def _parse_missing(self, missing: list[tuple[int, str]], file: str,
                       failed: list[tuple[int, str]]) -> dict[str, _Part]:
        """Parse new chunks together, each at its own lines (one parser run costs much less than one
        per statement). When that fails, each half alone, and so on down to the chunks that do not
        parse: a few runs for a file with one broken statement."""
        if not missing:
            return {}
        self.parsed += len(missing)
        out: dict[str, _Part] = {}
        self._parse_group(missing, file, out, failed)
        return out

    def _parse_group(self, group: list[tuple[int, str]], file: str, out: dict[str, _Part],
                     failed: list[tuple[int, str]]) -> None:
        pieces, at = [], 1
        for line, chunk in group:
            pieces.append("\n" * (line - at))
            pieces.append(chunk if chunk.endswith("\n") else chunk + "\n")
            at = line + chunk.count("\n") + (not chunk.endswith("\n"))
        starts = [line for line, _ in group]
        try:
            module = parse("".join(pieces), file)
            # Newlines inside brackets are ignored, so a broken statement may close its bracket in a
            # later chunk of the group (`experiment e {`, blank lines, `}`): then it does not count.
            ends = starts[1:] + [at]
            for st in module.stmts:
                if st.span.end_line >= ends[bisect.bisect_right(starts, st.span.line) - 1]:
                    raise CompileError([])
        except CompileError:
            if len(group) == 1:
                failed.append(group[0])
            else:
                half = len(group) // 2
                self._parse_group(group[:half], file, out, failed)
                self._parse_group(group[half:], file, out, failed)
            return
        stmts: list[list] = [[] for _ in group]
        comments: list[list] = [[] for _ in group]
        for s in module.stmts:
            stmts[bisect.bisect_right(starts, s.span.line) - 1].append(s)
        for c in module.comments:
            comments[bisect.bisect_right(starts, c.line) - 1].append(c)
        for i, (line, chunk) in enumerate(group):
            out.setdefault(chunk, _Part(line, tuple(stmts[i]), tuple(comments[i])))


def _broken_only(text: str, failed: list[tuple[int, str]]) -> str:
    """`text` with every line blanked but those of the broken statements and of the statement after
    each; the same number of lines (an error at the last statement says "end of file" only there)."""
    lines = text.split("\n")
    keep = [False] * len(lines)
    starts = [line for line, _ in split_statements(text)] + [len(lines) + 1]
    for line, chunk in failed:
        i = bisect.bisect_left(starts, line)
        end = starts[i + 2] if i + 2 < len(starts) else len(lines) + 1
        for j in range(line - 1, min(end - 1, len(lines))):
            keep[j] = True
    return "\n".join(ln if k else "" for ln, k in zip(lines, keep))


_new = object.__new__
_SPAN, _NODE, _NODES = 0, 1, 2
# per AST class: its fields that hold spans or subtrees (the others are names, numbers and flags)
_PLANS: dict[type, tuple[tuple[str, int], ...]] = {}


def _shift(node: Any, d: int) -> Any:
    """The same tree `d` lines further down. Frozen dataclasses are copied through their __dict__,
    several times faster than calling their constructors (an edit near the top of a big file moves
    every statement below it)."""
    cls = node.__class__
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _plan(node)
    fields = node.__dict__.copy()
    for name, how in plan:
        v = fields[name]
        if how == _SPAN:
            fields[name] = _shift_span(v, d)
        elif how == _NODE:
            fields[name] = _shift(v, d)
        else:
            fields[name] = tuple([_shift(x, d) for x in v])
    new = _new(cls)
    new.__dict__.update(fields)
    return new


def _shift_span(s: Span, d: int) -> Span:
    new = _new(Span)
    new.__dict__.update(file=s.file, line=s.line + d, col=s.col, end_line=s.end_line + d, end_col=s.end_col)
    return new


def _plan(node: Any) -> tuple[tuple[str, int], ...]:
    if isinstance(node, ast.Comment):
        return ()
    out = []
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, Span):
            out.append((f.name, _SPAN))
        elif isinstance(v, tuple):
            out.append((f.name, _NODES))
        elif dataclasses.is_dataclass(v):
            out.append((f.name, _NODE))
    return tuple(out)
