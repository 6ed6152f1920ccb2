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
