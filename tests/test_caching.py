"""Caching: keys change exactly when a result can change. Uses the torch-free data operators, so each
test runs in well under a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write
from expc.interpreter.session import Session

PROGRAM = """\
experiment cache_demo { seed = 0 }
param n = 30
data words = text("words.txt")
data sums = arithmetic(n = n, digits = 2)
data both = mix(words, sums)
data parts = split(both, test = 0.25, seed = 1)
data head = take(parts.train, 5)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path / "words.txt", "\n".join(f"word {i}" for i in range(40)) + "\n")
    write(tmp_path / "p.exp", PROGRAM)
    return tmp_path


def run(project: Path, overrides=(), text: str | None = None) -> list[str]:
    if text is not None:
        write(project / "p.exp", text)
    s = Session.open(project / "p.exp", list(overrides), project / ".expc")
    result = s.run()
    assert result.status == "ok", result.failure
    ran = sorted(result.ran)
    # the registry agrees with the in-process trail
    rows = s.runs.node_runs(result.run_id)
    assert sorted(n for n, _, _, st, *_ in rows if st == "ran") == ran
    return ran


def test_first_run_runs_everything_and_rerun_nothing(project):
    assert run(project) == ["both", "head", "parts", "sums", "words"]
    assert run(project) == []


def test_editing_a_param_reruns_only_dependents(project):
    run(project)
    assert run(project, text=PROGRAM.replace("param n = 30", "param n = 31")) == ["both", "head", "parts", "sums"]


def test_override_reruns_only_dependents_and_back_is_cached(project):
    run(project)
    assert run(project, ["n=12"]) == ["both", "head", "parts", "sums"]
    assert run(project) == []  # the original results are still in the store


def test_comments_whitespace_and_order_change_nothing(project):
    run(project)
    lines = PROGRAM.splitlines()
    reordered = "\n".join([lines[0], "# a comment", lines[6], lines[5], "", lines[4], lines[3], lines[2], lines[1]])
    reordered = reordered.replace("take(parts.train, 5)", "take( parts.train ,\n   5 )   # trailing")
    assert run(project, text=reordered + "\n") == []


def test_writing_a_default_explicitly_keys_the_same(project):
    run(project)
    assert run(project, text=PROGRAM.replace('text("words.txt")', 'text("words.txt", chunk = "line")')) == []


def test_data_file_content_enters_the_key(project):
    run(project)
    write(project / "words.txt", "\n".join(f"word {i}" for i in range(41)) + "\n")
    assert run(project) == ["both", "head", "parts", "words"]


def test_seed_setting_enters_every_key(project):
    run(project)
    assert run(project, ["seed=3"]) == ["both", "head", "parts", "sums", "words"]


def test_node_argument_override(project):
    run(project)
    assert run(project, ["head.n=6"]) == ["head"]


def test_dry_run_explains(project):
    run(project)
    s = Session.open(project / "p.exp", ["n=12"], project / ".expc")
    rows = {r[0]: r for r in s.dry_run()}
    assert rows["words"][2] == "cached"
    assert rows["sums"][2] == "run" and "n changed: 30 -> 12" in rows["sums"][3]
    assert rows["both"][2] == "run" and "input" in rows["both"][3]
    # a dry run computes nothing
    assert run(project) == []


def test_old_temporaries_of_killed_runs_are_swept(project):
    import os
    import time

    run(project)
    tmp_root = project / ".expc" / "tmp"
    old, young = tmp_root / "deadbeef.1.0", tmp_root / "deadbeef.2.0"
    for d in (old, young):
        d.mkdir()
        (d / "partial.bin").write_bytes(b"x")
    hour_ago = time.time() - 7200
    os.utime(old, (hour_ago, hour_ago))
    assert run(project) == []
    assert not old.exists() and young.exists()  # a young one may belong to a run still going
