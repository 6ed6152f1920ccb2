"""Spans (1-based lines, columns counted in characters, end exclusive) and LSP positions (0-based
lines, columns counted in the client's code units: UTF-16 unless it negotiated another encoding)."""

from __future__ import annotations

from typing import Callable

from lsprotocol import types as lsp

from expc.spec.diagnostics import Span


def utf16_units(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-16-le")) // 2


class Lines:
    """One text's lines, converting between span columns and client positions."""

    def __init__(self, text: str, units: Callable[[str], int] = utf16_units):
        self.lines = text.split("\n")
        self.units = units

    def line(self, n: int) -> str:
        """Line n (1-based), '' past the end."""
        return self.lines[n - 1] if 0 < n <= len(self.lines) else ""

    def position(self, line: int, col: int) -> lsp.Position:
        """The client position of span line/column (1-based)."""
        if line > len(self.lines):
            return lsp.Position(line=max(len(self.lines) - 1, 0), character=self.units(self.lines[-1]))
        text = self.line(line)
        return lsp.Position(line=max(line - 1, 0), character=self.units(text[: max(col - 1, 0)]))

    def range(self, span: Span | None) -> lsp.Range:
        if span is None:  # a problem of the whole file (not found, not UTF-8)
            return lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0))
        return lsp.Range(start=self.position(span.line, span.col), end=self.position(span.end_line, span.end_col))

    def whole(self) -> lsp.Range:
        return lsp.Range(start=lsp.Position(line=0, character=0), end=self.position(len(self.lines), 10**9))

    def from_position(self, pos: lsp.Position) -> tuple[int, int]:
        """(line, column), 1-based, of a client position; columns past the end of the line clamp."""
        text = self.line(pos.line + 1)
        if self.units is utf16_units and text.isascii():
            return pos.line + 1, min(pos.character, len(text)) + 1
        count = 0
        for i, ch in enumerate(text):
            if count >= pos.character:
                return pos.line + 1, i + 1
            count += self.units(ch)
        return pos.line + 1, len(text) + 1

    def offset(self, line: int, col: int) -> int:
        """The index into the text of span line/column (1-based)."""
        return sum(len(x) + 1 for x in self.lines[: line - 1]) + col - 1


def contains(span: Span, line: int, col: int) -> bool:
    """Whether (line, col) is inside span or just after its end (a cursor right after a word is on it)."""
    if (line, col) < (span.line, span.col):
        return False
    return (line, col) <= (span.end_line, span.end_col)
