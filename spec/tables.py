"""Precomputed LALR tables for the grammar, so `expc check` does not rebuild them at every start.

Building the tables from grammar.lark takes ~0.2 s; loading them from `grammar_tables.json` takes a
few ms. The file is JSON (never pickle), records the grammar's hash and Lark's version, and is used
only when both match; otherwise the parser builds the tables itself. Regenerate it after editing the
grammar (a test fails until you do):

    python -m expc.spec.tables
"""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import lark
from lark import Lark

TABLES = "grammar_tables.json"
# keep_all_tokens: the AST builder (spec/parser.py) takes spans from keyword and bracket tokens too
OPTIONS = dict(parser="lalr", lexer="contextual", keep_all_tokens=True, maybe_placeholders=False)


def grammar_text() -> str:
    return (files("expc.spec") / "grammar.lark").read_text(encoding="utf-8")


def fingerprint(grammar: str) -> str:
    return hashlib.sha256(f"{lark.__version__}\n{OPTIONS}\n{grammar}".encode()).hexdigest()


def _enc(o: Any) -> Any:
    # JSON has neither int keys nor tuples, and the tables use both
    if isinstance(o, dict):
        if any(not isinstance(k, str) for k in o):
            return {"#int": [[k, _enc(v)] for k, v in o.items()]}
        return {k: _enc(v) for k, v in o.items()}
    if isinstance(o, tuple):
        return {"#tuple": [_enc(v) for v in o]}
    if isinstance(o, list):
        return [_enc(v) for v in o]
    return o


def _dec(o: Any) -> Any:
    if isinstance(o, dict):
        if "#int" in o:
            return {k: _dec(v) for k, v in o["#int"]}
        if "#tuple" in o:
            return tuple(_dec(v) for v in o["#tuple"])
        return {k: _dec(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_dec(v) for v in o]
    return o


def build_tables(grammar: str) -> dict:
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    parser = Lark(grammar, **OPTIONS)
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    return {"fingerprint": fingerprint(grammar), "tables": _enc({"data": data, "memo": memo})}


def load_parser(grammar: str, **kwargs) -> Lark:
    """The Lark parser from the stored tables when they are current, else built from the grammar."""
    try:
        stored = json.loads((files("expc.spec") / TABLES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = None
    if stored and stored.get("fingerprint") == fingerprint(grammar):
        t = _dec(stored["tables"])
        return Lark._load_from_dict(t["data"], t["memo"], **kwargs)
    return Lark(grammar, **OPTIONS, **kwargs)


def main() -> None:
    out = Path(__file__).with_name(TABLES)
    out.write_text(json.dumps(build_tables(grammar_text()), separators=(",", ":")), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
