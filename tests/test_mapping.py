"""ctx.map: one node under many bindings, in this process or in local worker processes, with results in
order and failures as the failing node's diagnostic. Workers get the checked program, not its file.
Torch-free data operators, so the only slow part is starting the worker processes."""

from __future__ import annotations

from conftest import write
from expc.interpreter.executor import NodeFailed
from expc.interpreter.session import Session

PROGRAM = """\
experiment m {{ seed = 0 }}
param n ~ int(1, 50, default = 5)
data sums = arithmetic(n = n, digits = {digits})
data parts = split(sums, test = 2)
"""
BINDINGS = [{"n": 7}, {"n": 1}, {"n": 9}]  # one train example is too few to hold two out


def executor(f, tmp_path):
    s = Session.open(f, cache=tmp_path / "store")
    return s, s.executor(s.runs.start_run(s.program.file, "m", "test", []))


def check(results, f) -> None:
    assert [r.ok for r in results] == [True, False, True]
    assert [r.value["train"].n for r in (results[0], results[2])] == [5, 7]
    assert [r.value["test"].n for r in (results[0], results[2])] == [2, 2]
    failed = results[1]
    assert isinstance(failed.error, NodeFailed) and not failed.pruned
    diag = failed.error.diag  # the failing node's diagnostic, at the argument it names
    assert "cannot split 1 examples with test = 2" in diag.message
    assert (diag.span.file, diag.span.line) == (str(f), 4)
    assert (diag.span.line, diag.span.col) == (4, PROGRAM.splitlines()[3].index("2") + 1)


def test_in_process_map_gives_results_in_order_and_failures_as_diagnostics(tmp_path):
    f = write(tmp_path / "m.exp", PROGRAM.format(digits=2))
    s, ex = executor(f, tmp_path)
    check(ex.mapper().map("parts", BINDINGS, parallel=1), f)


def test_a_worker_evaluates_the_program_it_was_given_not_the_file_on_disk(tmp_path):
    f = write(tmp_path / "m.exp", PROGRAM.format(digits=2))
    s, ex = executor(f, tmp_path)
    write(f, PROGRAM.format(digits=4))  # saved after the parent compiled (watch mode, mid-search)
    try:
        results = ex.mapper().map("parts", BINDINGS, parallel=2)
    finally:
        ex.close()
    check(results, f)
    for r in (results[0], results[2]):  # the original program: two-digit operands
        assert "digits=2" in r.value["train"].source
        assert all(len(x.split("+")[0]) <= 2 for x in r.value["train"].examples())
    # computed in other processes, into the same store, recorded in the same run
    rows = s.runs.node_runs(ex.run_id)
    assert sorted(r[0] for r in rows if r[3] == "ran") == ["parts", "parts", "sums", "sums", "sums"]
    assert ex.trail == []  # nothing ran here
    assert ex.mapper().map("parts", BINDINGS[:1], parallel=1)[0].value["train"].n == 5
    assert [st for _, _, st in ex.trail] == ["cached"]  # the parent finds the workers' result stored
