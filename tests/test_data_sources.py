"""Data sources: each reader, the combinators, and the errors users see (file:line)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from _opctx import OpContext, run

from expc.runtime.api import Artifact, OpError
from expc.runtime.data.values import TextData
from expc.runtime.ops import data as D


@pytest.fixture
def ctx(tmp_path):
    return OpContext(tmp_path / "node")


def _err(excinfo) -> str:
    return excinfo.value.message


def test_text_lines_skip_blank(tmp_path, ctx):
    f = tmp_path / "a.txt"
    f.write_text("one\n\n  \ntwo words\nthree\n")
    d = run(D.text, ctx, path=str(f))
    assert isinstance(d, TextData)
    assert d.examples() == ["one", "two words", "three"]
    assert d.n == 3 and d.n_bytes == len("onetwo wordsthree")
    assert (d.path / d.file).exists()


def test_text_paragraphs_and_file(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("p1 l1\np1 l2\n\n\np2\n")
    assert run(D.text, OpContext(tmp_path / "x"), path=str(f), chunk="paragraph").examples() == ["p1 l1\np1 l2", "p2"]
    assert run(D.text, OpContext(tmp_path / "y"), path=str(f), chunk="file").examples() == ["p1 l1\np1 l2\n\n\np2\n"]


def test_value_roundtrips_through_artifact_json(tmp_path, ctx):
    f = tmp_path / "a.txt"
    f.write_text("é\nü\n")
    d = run(D.text, ctx, path=str(f))
    back = Artifact.from_json(json.loads(json.dumps(d.to_json())), d.path)
    assert isinstance(back, TextData) and back.examples() == ["é", "ü"] and back.source == d.source


def test_missing_file(tmp_path, ctx):
    with pytest.raises(OpError) as e:
        run(D.text, ctx, path=str(tmp_path / "nope.txt"))
    assert "nope.txt: no such file" in _err(e) and e.value.field == "path"


def test_empty_text_source(tmp_path, ctx):
    f = tmp_path / "empty.txt"
    f.write_text("\n   \n")
    with pytest.raises(OpError) as e:
        run(D.text, ctx, path=str(f))
    assert "empty.txt: empty source" in _err(e)


def test_non_utf8_reports_line(tmp_path, ctx):
    f = tmp_path / "latin.txt"
    f.write_bytes(b"fine\nalso fine\ncaf\xe9\n")
    with pytest.raises(OpError) as e:
        run(D.text, ctx, path=str(f))
    assert "latin.txt:3: not UTF-8" in _err(e) and "0xe9" in _err(e)


def test_jsonl_reads_field(tmp_path, ctx):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "a\\nb", "id": 1}\n\n{"text": "c"}\n')
    assert run(D.jsonl, ctx, path=str(f)).examples() == ["a\nb", "c"]


def test_jsonl_other_field(tmp_path, ctx):
    f = tmp_path / "d.jsonl"
    f.write_text('{"body": "x"}\n')
    assert run(D.jsonl, ctx, path=str(f), field="body").examples() == ["x"]


def test_jsonl_malformed_line(tmp_path, ctx):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "a"}\n{"text": "b"\n')
    with pytest.raises(OpError) as e:
        run(D.jsonl, ctx, path=str(f))
    assert "d.jsonl:2: malformed JSON line" in _err(e)


def test_jsonl_missing_field(tmp_path, ctx):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "a"}\n{"txt": "b"}\n')
    with pytest.raises(OpError) as e:
        run(D.jsonl, ctx, path=str(f))
    assert "d.jsonl:2: missing field 'text' (fields: txt)" == _err(e).split("/")[-1]
    assert e.value.field == "field"


def test_jsonl_non_string_and_non_object(tmp_path, ctx):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": 3}\n')
    with pytest.raises(OpError, match=r"d.jsonl:1: field 'text' is a int"):
        run(D.jsonl, ctx, path=str(f))
    f.write_text('["text"]\n')
    with pytest.raises(OpError, match=r"d.jsonl:1: expected a JSON object"):
        run(D.jsonl, ctx, path=str(f))


def test_jsonl_empty(tmp_path, ctx):
    f = tmp_path / "d.jsonl"
    f.write_text("")
    with pytest.raises(OpError, match="d.jsonl: empty source"):
        run(D.jsonl, ctx, path=str(f))


def test_csv_column(tmp_path, ctx):
    f = tmp_path / "d.csv"
    f.write_text('id,text\n1,hello\n2,"multi\nline, with comma"\n3,\n')
    assert run(D.csv, ctx, path=str(f)).examples() == ["hello", "multi\nline, with comma"]


def test_csv_missing_column(tmp_path, ctx):
    f = tmp_path / "d.csv"
    f.write_text("id,body\n1,x\n")
    with pytest.raises(OpError) as e:
        run(D.csv, ctx, path=str(f))
    assert "d.csv:1: no column 'text' (columns: id, body)" in _err(e) and e.value.field == "column"


def test_csv_empty_and_non_utf8(tmp_path, ctx):
    f = tmp_path / "d.csv"
    f.write_text("")
    with pytest.raises(OpError, match="d.csv: empty source"):
        run(D.csv, ctx, path=str(f))
    f.write_text("text\n")
    with pytest.raises(OpError, match="d.csv: empty source: no rows"):
        run(D.csv, ctx, path=str(f))
    f.write_bytes(b"text\nok\n\xff\xfe\n")
    with pytest.raises(OpError, match=r"d.csv:3: not UTF-8"):
        run(D.csv, ctx, path=str(f))


def test_arithmetic_is_correct_and_seeded(tmp_path):
    d = run(D.arithmetic, OpContext(tmp_path / "a"), n=500, digits=3, seed=1)
    ex = d.examples()
    assert len(ex) == 500 and d.n == 500
    for line in ex:
        lhs, rhs = line.split("=")
        a, b = lhs.split("+")
        assert int(a) + int(b) == int(rhs) and len(a) <= 3 and len(b) <= 3
    assert max(len(line.split("+")[0]) for line in ex) == 3
    again = run(D.arithmetic, OpContext(tmp_path / "b"), n=500, digits=3, seed=1).examples()
    other = run(D.arithmetic, OpContext(tmp_path / "c"), n=500, digits=3, seed=2).examples()
    assert again == ex and other != ex


def test_arithmetic_other_ops(tmp_path):
    ex = run(D.arithmetic, OpContext(tmp_path / "a"), n=200, digits=2, ops="-*").examples()
    assert {("-" in e.split("=")[0][1:]) or ("*" in e) for e in ex} == {True}
    for e in ex:
        lhs, rhs = e.split("=")
        assert eval(lhs) == int(rhs)  # noqa: S307 - digits and one operator only


def _data(tmp_path, name, examples):
    return TextData.write(tmp_path / name, examples, name)


def test_mix_unweighted_keeps_everything(tmp_path, ctx):
    a = _data(tmp_path, "a", [f"a{i}" for i in range(10)])
    b = _data(tmp_path, "b", [f"b{i}" for i in range(5)])
    m = run(D.mix, ctx, sources=[a, b], seed=3)
    assert sorted(m.examples()) == sorted(a.examples() + b.examples())
    assert m.examples() != a.examples() + b.examples()  # shuffled
    assert "a" in m.source and "b" in m.source


def test_mix_weighted_shares(tmp_path, ctx):
    a = _data(tmp_path, "a", [f"a{i}" for i in range(100)])
    b = _data(tmp_path, "b", [f"b{i}" for i in range(10)])
    ex = run(D.mix, ctx, sources=[a, b], weights=[1, 3], n=200).examples()
    assert len(ex) == 200
    assert sum(e.startswith("a") for e in ex) == 50 and sum(e.startswith("b") for e in ex) == 150
    assert set(e for e in ex if e.startswith("b")) == set(b.examples())  # cycled, every example used


def test_mix_weighted_by_bytes(tmp_path, ctx):
    short = _data(tmp_path, "s", [f"{i:02d}" for i in range(50)])  # 2 bytes each
    long = _data(tmp_path, "l", ["x" * 20 + f"{i:02d}" for i in range(20)])  # 22 bytes each
    ex = run(D.mix, ctx, sources=[short, long], weights=[1, 1], n=440, unit="bytes").examples()
    b_short = sum(len(e) for e in ex if len(e) == 2)
    b_long = sum(len(e) for e in ex if len(e) == 22)
    assert b_short == 220 and b_long == 220  # 110 short examples (cycled), 10 long ones
    by_examples = run(D.mix, OpContext(tmp_path / "m2"), sources=[short, long], weights=[1, 1], n=40).examples()
    assert sum(len(e) == 2 for e in by_examples) == 20


def test_mix_bad_weights(tmp_path, ctx):
    a = _data(tmp_path, "a", ["x"])
    with pytest.raises(OpError) as e:
        run(D.mix, ctx, sources=[a, a], weights=[1.0])
    assert e.value.field == "weights" and "1 weights for 2 sources" in _err(e)
    with pytest.raises(OpError, match="not all 0"):
        run(D.mix, ctx, sources=[a], weights=[0.0])


def test_split_partitions_deterministically(tmp_path):
    d = _data(tmp_path, "d", [f"e{i}" for i in range(50)])
    s = run(D.split, OpContext(tmp_path / "s"), data=d, test=0.2, seed=1)
    assert set(s) == {"train", "test"}
    tr, te = s["train"].examples(), s["test"].examples()
    assert len(te) == 10 and len(tr) == 40 and sorted(tr + te) == sorted(d.examples())
    assert s["train"].path == s["test"].path and s["train"].file != s["test"].file
    s2 = run(D.split, OpContext(tmp_path / "s2"), data=d, test=0.2, seed=1)
    s3 = run(D.split, OpContext(tmp_path / "s3"), data=d, test=0.2, seed=2)
    assert s2["test"].examples() == te and s3["test"].examples() != te
    s4 = run(D.split, OpContext(tmp_path / "s4"), data=d, test=7)
    assert s4["test"].n == 7


def test_split_errors(tmp_path, ctx):
    d = _data(tmp_path, "d", ["only"])
    with pytest.raises(OpError, match="train part would be empty") as e:
        run(D.split, ctx, data=d, test=0.5)
    assert e.value.field == "test"
    d2 = _data(tmp_path, "d2", ["a", "b", "c"])
    with pytest.raises(ValidationError, match="whole number"):  # a params error: `expc check` reports it
        run(D.split, ctx, data=d2, test=1.5)


def test_take(tmp_path, ctx):
    d = _data(tmp_path, "d", ["a", "b", "c"])
    assert run(D.take, ctx, data=d, n=2).examples() == ["a", "b"]
    c2 = OpContext(tmp_path / "t2")
    assert run(D.take, c2, data=d, n=5).examples() == ["a", "b", "c"]
    assert c2.warnings and c2.warnings[0][1] == "n"


def test_declarations_import_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, expc.runtime.ops.data, expc.runtime.ops.models, expc.runtime.ops.train, "
        "expc.runtime.ops.evaluate, expc.runtime.data.values; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
