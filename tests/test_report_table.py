"""A report's table written as a list of metrics, `table = [ppl_base, ppl_dem(sweep.best)]`: the field
is Labelled, so the list is the record {expression text: value}, rows named after what they compute.
Records keep their meaning. Check-time tests on the lowered node, one tiny end-to-end run."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import Field

from expc.spec.ir import to_wire
from expc.interpreter.compiler import compile
from expc.runtime.registry import Labelled, Params, load_registry, op
from expc.runtime.report.build import table
from expc.spec.diagnostics import CompileError

PROGRAM = """\
experiment t { seed = 0 }
param w ~ uniform(0, 1, default = 0.5)
data a = split(arithmetic(n = 60, digits = 2, seed = 1), test = 0.5)
model init = gpt2(layers = 1, width = 16, heads = 2, context = 16)
train m = finetune(init, a.train, steps = 3, lr = 1e-2, batch = 4)
merge dem = init + w * (m - init)
eval ppl_base = perplexity(init, a.test)
eval ppl_dem = perplexity(dem, a.test)
search sweep { objective = minimize(ppl_dem), sampler = random(0), trials = 2 }
{report}
"""


def write(tmp_path, report: str):
    f = tmp_path / "main.exp"
    f.write_text(PROGRAM.replace("{report}", report), encoding="utf-8")
    return f


def diagnostics(path):
    with pytest.raises(CompileError) as info:
        compile(path)
    return info.value.diagnostics


def test_a_list_is_a_record_keyed_by_the_items_expressions(tmp_path):
    f = write(tmp_path, "report r { table = [ppl_base, ppl_dem, ppl_dem(sweep.best), ppl_base.value * 2] }")
    node = compile(f).program.nodes["r"]
    t = to_wire(node.args["table"])  # the IR value as JSON
    assert list(t) == ["ppl_base", "ppl_dem", "ppl_dem(sweep.best)", "ppl_base.value * 2"]
    assert t["ppl_base"] == {"$ref": "ppl_base"}
    assert t["ppl_dem"] == {"$ref": "ppl_dem"}
    # the re-instantiation is its own node, bound to the search's best
    bound = t["ppl_dem(sweep.best)"]["$ref"]
    assert bound != "ppl_dem"
    assert compile(f).program.nodes[bound].op == "bind"
    assert t["ppl_base.value * 2"]["$arith"] == "*"
    # each row keeps the span of its item (line 10: `report r { table = [ppl_base, ...`)
    spans = node.arg_spans
    assert (spans["table"].line, spans["table"].col) == (10, 20)
    assert (spans["table.ppl_base"].line, spans["table.ppl_base"].col, spans["table.ppl_base"].end_col) == (10, 21, 29)
    best = spans["table.ppl_dem(sweep.best)"]
    assert (best.line, best.col, best.end_col) == (10, 40, 59)


def test_the_label_is_the_canonical_text_not_the_layout(tmp_path):
    f = write(tmp_path, "report r {\n  table = [\n    ppl_dem( sweep.best ),\n    (ppl_base),\n  ]\n}")
    assert list(to_wire(compile(f).program.nodes["r"].args["table"])) == ["ppl_dem(sweep.best)", "ppl_base"]


def test_a_record_keeps_its_meaning(tmp_path):
    f = write(tmp_path, "report r { table = {base: {math: ppl_base}, dem: ppl_dem}, columns = [\"math\"] }")
    node = compile(f).program.nodes["r"]
    assert node.args["table"] == {"base": {"math": {"$ref": "ppl_base"}}, "dem": {"$ref": "ppl_dem"}}
    assert node.args["columns"] == ["math"]


def test_a_list_elsewhere_is_still_a_list(tmp_path):
    # columns is a list[str], not Labelled: its list stays a list (and is not renamed)
    f = write(tmp_path, "report r { table = [ppl_base], columns = [\"value\"] }")
    assert compile(f).program.nodes["r"].args["columns"] == ["value"]


def test_an_item_given_twice_is_located(tmp_path):
    f = write(tmp_path, "report r { table = [ppl_base, ppl_dem, ppl_base] }")
    (d,) = diagnostics(f)
    assert (d.code, d.span.line, d.span.col, d.span.end_col) == ("E204", 10, 40, 48)
    assert d.message == "'ppl_base' appears twice in the list of 'table' (its items name the rows)"
    ((note, first),) = d.notes
    assert note == "first here" and (first.line, first.col) == (10, 21)
    assert "table = {name: value, ...}" in d.hint


def test_an_error_in_an_item_points_at_the_item(tmp_path):
    f = write(tmp_path, "report r { table = [ppl_base, ppl_dme] }")
    (d,) = diagnostics(f)
    assert (d.code, d.span.line, d.span.col, d.message) == ("E201", 10, 31, "unknown name 'ppl_dme'")


def test_the_report_table_field_declares_the_capability():
    f = load_registry().get("report").field("table")
    assert f.labelled and not f.is_list
    assert not load_registry().get("report").field("columns").labelled


def test_labelled_must_mark_a_record_field():
    class Bad(Params):
        rows: Annotated[list[Any], Labelled()] = Field(default_factory=list)

    with pytest.raises(TypeError, match="Labelled field 'rows' must be a record"):
        op("bad_labelled", params=Bad, returns="report")(lambda p, ctx: None)


def test_a_list_made_table_renders_rows_named_by_label():
    metric = {"value": 12.3456, "nats_per_byte": 2.5}
    rows = {"ppl_base": metric, "ppl_dem(sweep.best)": {"value": 3.0, "nats_per_byte": 1.25}}
    assert table(rows, None, "value", 3) == {
        "headers": ["", "value"], "rows": [["ppl_base", "12.3"], ["ppl_dem(sweep.best)", "3"]]}
    assert table(rows, None, "nats_per_byte", 4)["rows"] == [["ppl_base", "2.5"], ["ppl_dem(sweep.best)", "1.25"]]


def test_a_list_made_table_runs(tmp_path):
    from expc.interpreter.session import Session

    f = write(tmp_path, "report r { table = [ppl_base, ppl_dem(sweep.best)], digits = 6 }")
    r = Session.open(f, cache=tmp_path / "store").run()
    assert r.status == "ok", r.failure
    rows = r.results["r"]["table"]["rows"]
    assert [name for name, _ in rows] == ["ppl_base", "ppl_dem(sweep.best)"]
    assert rows[0][1] == f"{r.results['ppl_base']['value']:.6g}"
    best_value = r.results["sweep"]["best_value"]
    assert float(rows[1][1]) == pytest.approx(best_value, rel=1e-5)
