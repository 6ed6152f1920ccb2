"""The stored LALR tables match the grammar (else every start rebuilds them: slow, not wrong)."""

import json
from pathlib import Path

from expc.spec import tables


def test_stored_tables_are_current():
    stored = json.loads((Path(tables.__file__).with_name(tables.TABLES)).read_text())
    assert stored["fingerprint"] == tables.fingerprint(tables.grammar_text()), (
        "spec/grammar.lark changed: run `python -m expc.spec.tables`"
    )


def test_loaded_parser_equals_built_parser():
    from expc.spec.parser import parse

    text = 'experiment e { seed = 1 }\nparam w ~ uniform(0, 1)  # c\nmerge m = a + w * (b - a)\n'
    module = parse(text, "t.exp")
    assert [type(s).__name__ for s in module.stmts] == ["Experiment", "Param", "Decl"]
    assert tables.load_parser(tables.grammar_text()).parse(text) == \
        tables.Lark(tables.grammar_text(), **tables.OPTIONS).parse(text)


def test_hand_written_lexer_agrees_with_larks_lexer():
    """spec/parser.py lexes by hand (faster); on every example and GRAMMAR.md snippet it must produce
    exactly the tokens Lark's own lexer produces from grammar.lark (keywords as reserved words here)."""
    import re

    from conftest import EXAMPLES, ROOT
    from expc.spec.lexer import KEYWORDS, tokens

    lark = tables.Lark(tables.grammar_text(), parser="lalr", lexer="basic")
    texts = [p.read_text() for p in sorted(EXAMPLES.glob("*.exp"))]
    texts += re.findall(r"```exp\n(.*?)```", (ROOT / "GRAMMAR.md").read_text(), re.S)
    texts.append('x = {a: 1.5e-3, "b c": [.5, 2., 3e4, 7]} # c\n\n  y(-1 / 2 * -z.w, k = "\\"q\\"")\n')
    assert len(texts) > 5
    for text in texts:
        theirs = [(t.type, str(t), t.line, t.column, t.end_line, t.end_column) for t in lark.lex(text)]
        ours = [(KEYWORDS.get(str(t), t.type) if t.type == "NAME" else t.type, str(t), t.line, t.column,
                 t.end_line, t.end_column) for t in tokens(text, "t.exp", [])]
        assert ours == theirs
