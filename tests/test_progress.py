"""Progress off a terminal (a log, CI): a line per node at most every few seconds and always its last,
in units people read. On a terminal the rich bars stay (not tested here: pytest's stderr is no TTY)."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

from expc.interpreter.console import Console, PlainProgress, amount, duration, speed

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_long_task_prints_a_bounded_number_of_lines():
    clock, lines = Clock(), []
    p = PlainProgress("m: finetune m", 10_000, "step", lines.append, interval=5.0, clock=clock)
    for _ in range(10_000):  # 1,250 s of training, an update every 0.125 s
        clock.t += 0.125
        p.advance(1)
    assert len(lines) <= 1_250 / 5 + 1
    assert lines[0] == "m: finetune m 40/10000 steps, 8 steps/s, ETA 20:45"
    assert lines[-1] == "m: finetune m 10000/10000 steps in 20:50, 8 steps/s"  # the last, always


def test_a_short_task_prints_its_last_line_only():
    clock, lines = Clock(), []
    p = PlainProgress("dem: merge", 482_304, "B", lines.append, clock=clock)
    for _ in range(9):  # what printed nine lines before
        clock.t += 0.004
        p.advance(482_304 // 9 + 1)
    assert lines == ["dem: merge 482/482 kB in 0.04 s, 13 MB/s"]


def test_units():
    assert amount(231e6, 1_070e6, "B") == "231/1070 MB"
    assert amount(12e9, 32e9, "B") == "12.0/32.0 GB"
    assert amount(3, 24, "trial") == "3/24 trials" and amount(7, 0, "step") == "7 steps"
    assert speed(590e6, "B") == "590 MB/s" and speed(2.3e9, "B") == "2.30 GB/s"
    assert speed(12.34, "step") == "12.3 steps/s"
    assert [duration(s) for s in (0.04, 7.25, 42, 125, 4000)] == ["0.04 s", "7.2 s", "42 s", "2:05", "1:06:40"]


def test_a_node_that_stops_early_prints_where_it_stopped(capsys):
    console = Console(interval=5.0)
    advance = console.events().progress("finetune m", 100, "m", "step")
    advance(40)  # stopped early (a pruned trial, an early stop)

    class PN:
        display, op, key = "m", "finetune", "0" * 16

    console._done(PN, "ran", 1.0)
    err = capsys.readouterr().err
    assert re.search(r"^ {7}m: finetune m 40/100 steps in [0-9.]+ s, .* steps/s$", err, re.M), err


def test_a_search_run_off_a_terminal_prints_one_line_per_merge(run_cli, tmp_path):
    shutil.copytree(EXAMPLES / "models", tmp_path / "models")
    (tmp_path / "s.exp").write_text(
        "experiment s { seed = 0 }\n"
        "param w ~ uniform(0, 1, default = 0.5)\n"
        'model base = pretrained("models/base")\n'
        'model m1 = pretrained("models/m1")\n'
        "data d = arithmetic(n = 40, digits = 2)\n"
        "merge dem = base + w * (m1 - base)\n"
        "eval ppl = perplexity(dem, d)\n"
        "search sweep { objective = minimize(ppl), sampler = random(0), trials = 6 }\n"
    )
    code, _, err = run_cli("run", tmp_path / "s.exp", "--cache", tmp_path / "store")
    assert code == 0, err
    merges = err.count("run    dem ")
    assert merges == 7  # the declared merge and one per trial
    lines = [x for x in err.splitlines() if x.startswith("       ") and ": " in x]
    merge_lines = [x for x in lines if x.startswith("       dem: merge ")]
    assert len(merge_lines) == merges  # before: a line per 10% of each merge, 70 lines
    assert all(re.fullmatch(r" {7}dem: merge 114/114 kB in [0-9.]+ s, [0-9.]+ [kMG]?B/s", x) for x in merge_lines), \
        merge_lines
    sweep_s = float(re.search(r"done   sweep ([0-9.]+)s", err).group(1))
    assert 1 <= len(lines) - len(merge_lines) <= 1 + math.ceil(sweep_s / 5)  # the search's own
