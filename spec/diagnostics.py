"""Errors are data: every problem is a Diagnostic with a code, a message and a source span.

Passes collect diagnostics and raise them together; one renderer prints caret excerpts, and
`to_json` gives editors the same data.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence


@dataclass(frozen=True, order=True)
class Span:
    """A region of a source file; lines and columns are 1-based, end_col is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def point(file: str, line: int, col: int, width: int = 1) -> "Span":
        return Span(file, line, col, line, col + max(width, 1))

    def to(self, other: "Span") -> "Span":
        """The span covering self and everything up to the end of other."""
        return Span(self.file, self.line, self.col, other.end_line, other.end_col)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None
    severity: str = "error"  # "error" | "warning"
    hint: str | None = None
    notes: tuple[tuple[str, Span | None], ...] = ()

    def to_json(self) -> dict:
        def sp(s: Span | None):
            if s is None:
                return None
            return {"file": s.file, "line": s.line, "col": s.col, "end_line": s.end_line, "end_col": s.end_col}

        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "span": sp(self.span),
            "hint": self.hint,
            "notes": [{"message": m, "span": sp(s)} for m, s in self.notes],
        }

    @staticmethod
    def from_json(data: dict) -> "Diagnostic":
        """The inverse of to_json (a diagnostic that crossed a process boundary)."""

        def sp(s: dict | None) -> Span | None:
            return None if s is None else Span(s["file"], s["line"], s["col"], s["end_line"], s["end_col"])

        return Diagnostic(data.get("code", "E600"), data.get("message", ""), sp(data.get("span")),
                          data.get("severity", "error"), data.get("hint"),
                          tuple((n["message"], sp(n.get("span"))) for n in data.get("notes", [])))


class CompileError(Exception):
    """Raised with every diagnostic a pass collected; the CLI renders them, never a traceback."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(f"{d.span}: {d.message}" for d in self.diagnostics))


@dataclass
class Collector:
    """Accumulates diagnostics so independent errors are reported together in one pass."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span | None, hint: str | None = None, notes=()) -> None:
        self.items.append(Diagnostic(code, message, span, "error", hint, tuple(notes)))

    def warning(self, code: str, message: str, span: Span | None, hint: str | None = None, notes=()) -> None:
        self.items.append(Diagnostic(code, message, span, "warning", hint, tuple(notes)))

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self.items.extend(diags)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise CompileError(self.items)


def validation_diagnostics(errors: list[dict], spans: dict[str, Span], fallback: Span | None,
                           what: str) -> list[Diagnostic]:
    """Pydantic's errors (ValidationError.errors()) as diagnostics at the spans of their fields: the one
    way a params model's (or the settings') errors reach a user, at check time and at plan time.
    `what` names the thing validated: "finetune()", "experiment"."""
    out = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ())]
        key = ".".join(loc)
        span = closest_span(spans, key) or fallback
        field = loc[0] if loc else ""
        msg = e.get("msg", "invalid value")
        if e.get("type") == "missing":
            out.append(Diagnostic("E403", f"{what} is missing the required argument '{field}'", fallback))
        elif e.get("type") == "extra_forbidden":
            out.append(Diagnostic("E402", f"{what} has no parameter '{field}'", span))
        else:
            got = e.get("input")
            shown = f" (got {got!r})" if got is not None and not isinstance(got, (dict, list)) else ""
            target = f"for '{key}' of {what}" if key else f"of {what}"
            out.append(Diagnostic("E401", f"invalid value {target}: {msg}{shown}", span))
    return out


def closest_span(spans: dict[str, Span], path: str, fallback: Span | None = None) -> Span | None:
    """The span recorded for a dotted path ("models.1.expr"), or for its nearest recorded prefix
    ("models.1", then "models"), else `fallback`."""
    parts = path.split(".") if path else []
    for i in range(len(parts), 0, -1):
        span = spans.get(".".join(parts[:i]))
        if span is not None:
            return span
    return fallback


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidates, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"


class SourceCache:
    """File texts by path, so the renderer can show excerpts for any file of a program."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}

    def add(self, file: str, text: str) -> None:
        self._texts[file] = text

    def line(self, file: str, line: int) -> str | None:
        text = self._texts.get(file)
        if text is None:
            try:
                text = Path(file).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            self._texts[file] = text
        lines = text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


def render(diags: Sequence[Diagnostic], sources: SourceCache | None = None, color: bool = False) -> str:
    """Caret excerpts in the style of modern compilers:

    file:3:12: error[E201]: unknown name 'bse'
       3 | model m = finetune(bse, d)
         |                    ^^^
         = hint: did you mean 'base'?
    """
    sources = sources or SourceCache()
    out: list[str] = []
    for d in diags:
        head = f"{d.severity}[{d.code}]: {d.message}"
        out.append(f"{d.span}: {head}" if d.span else head)
        if d.span:
            out.extend(_excerpt(d.span, sources))
        for msg, sp in d.notes:
            out.append(f"  note: {msg}" + (f" ({sp})" if sp else ""))
            if sp:
                out.extend(_excerpt(sp, sources))
        if d.hint:
            out.append(f"  = hint: {d.hint}")
    n_err = sum(d.severity == "error" for d in diags)
    n_warn = len(diags) - n_err
    if n_err or n_warn:
        parts = []
        if n_err:
            parts.append(f"{n_err} error" + ("s" if n_err != 1 else ""))
        if n_warn:
            parts.append(f"{n_warn} warning" + ("s" if n_warn != 1 else ""))
        out.append(", ".join(parts))
    return "\n".join(out)


def _excerpt(span: Span, sources: SourceCache) -> list[str]:
    text = sources.line(span.file, span.line)
    if text is None:
        return []
    num = str(span.line)
    pad = " " * len(num)
    end = span.end_col if span.end_line == span.line else len(text) + 1
    width = max(1, end - span.col)
    return [
        f"  {num} | {text}",
        f"  {pad} | {' ' * (span.col - 1)}{'^' * width}",
    ]
