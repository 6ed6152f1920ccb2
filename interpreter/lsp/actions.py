"""Diagnostics as LSP data, their quick fixes (every did-you-mean hint), and formatting."""

from __future__ import annotations

import re
from typing import Callable

from lsprotocol import types as lsp

from expc.spec.diagnostics import CompileError, Diagnostic, Span
from expc.spec.printer import format_source

SOURCE = "expc"
# did_you_mean's hint (expc.spec.diagnostics): "did you mean 'base'?" or "did you mean 'a' or 'b'?"
_DID_YOU_MEAN = re.compile(r"^did you mean ('[^']+'(?: or '[^']+')*)\?$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_STRING = re.compile(r'"[^"\\]*"$')


def suggestions(d: Diagnostic) -> list[str]:
    """The names a did-you-mean hint offers, best first."""
    m = _DID_YOU_MEAN.match(d.hint or "")
    if m is None:
        return []
    return [s.strip("'") for s in m.group(1).split(" or ")]


def to_lsp(d: Diagnostic, range_of: Callable[[Span | None], lsp.Range],
           location_of: Callable[[Span], lsp.Location]) -> lsp.Diagnostic:
    """The LSP form of a diagnostic: its code, range, severity; the hint in the message (editors show
    no separate hint); located notes as related information, the others in the message."""
    message = d.message
    related = []
    for note, span in d.notes:
        if span is not None:
            related.append(lsp.DiagnosticRelatedInformation(location=location_of(span), message=note))
        else:
            message += f"\nnote: {note}"
    if d.hint:
        message += f"\nhint: {d.hint}"
    return lsp.Diagnostic(
        range=range_of(d.span), message=message, code=d.code, source=SOURCE,
        severity=lsp.DiagnosticSeverity.Warning if d.severity == "warning" else lsp.DiagnosticSeverity.Error,
        related_information=related or None,
        data={"hint": d.hint, "suggestions": suggestions(d)} if d.hint else None,
    )


def quick_fixes(uri: str, diags: list[tuple[Diagnostic, lsp.Diagnostic]], text_at: Callable[[Span], str],
                wanted: lsp.Range) -> list[lsp.CodeAction]:
    """One action per suggestion of every did-you-mean diagnostic overlapping `wanted`: replace the
    misspelled word with the suggested one."""
    out = []
    for d, ld in diags:
        if d.span is None or not _overlaps(ld.range, wanted):
            continue
        written = text_at(d.span)
        quoted = _STRING.match(written) is not None  # a misspelled option: activation = "rleu"
        if not (quoted or _WORD.match(written)):
            continue  # the span is not a single word: nothing to replace safely
        for i, s in enumerate(suggestions(d)):
            new = f'"{s}"' if quoted else s
            edit = lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=ld.range, new_text=new)]})
            title = f"Replace {written} with {new}" if quoted else f"Replace '{written}' with '{new}'"
            out.append(lsp.CodeAction(title=title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[ld], edit=edit,
                                      is_preferred=i == 0))
    return out


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    def key(p: lsp.Position):
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def formatting(text: str, file: str, whole: lsp.Range) -> list[lsp.TextEdit] | None:
    """`expc fmt`'s layout as one edit; nothing for a text that does not parse (the diagnostics say why)."""
    try:
        out = format_source(text, file)
    except CompileError:
        return None
    if out == text:
        return []
    return [lsp.TextEdit(range=whole, new_text=out)]
