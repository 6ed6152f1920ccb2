"""expc watch driven by real file writes: reruns only what changed, survives errors, cancels
superseded runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import expc_bin, write

PROGRAM = """\
experiment watched { seed = 0 }
param n = 20
data words = text("words.txt")
data sums = arithmetic(n = n)
data both = mix(words, sums)
"""


class Watch:
    def __init__(self, exp: Path, cache: Path, env):
        self.log = exp.parent / "watch.log"
        self.f = open(self.log, "w")
        self.proc = subprocess.Popen(
            [*expc_bin(), "watch", str(exp), "--cache", str(cache), "--debounce", "0.2"],
            cwd=exp.parent, env=env, stdout=self.f, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 90) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.text()
            if len(re.findall(pattern, t)) >= count:
                return t
            assert self.proc.poll() is None, t
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {pattern!r} x{count}:\n{self.text()}")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.f.close()


def _runs(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"run \d+: (\d+) ran, (\d+) cached", text)]


@pytest.mark.slow
def test_watch_reruns_what_changed_and_survives_errors(tmp_path, subprocess_env):
    write(tmp_path / "words.txt", "alpha\nbeta\n")
    exp = write(tmp_path / "w.exp", PROGRAM)
    w = Watch(exp, tmp_path / "store", subprocess_env)
    try:
        w.wait_for(r"watching for changes\.\.\.")
        assert _runs(w.text()) == [(3, 0)]

        write(exp, PROGRAM.replace("param n = 20", "param n = 21"))  # sums and both rerun
        t = w.wait_for(r"watching for changes\.\.\.", 2)
        assert _runs(t)[-1] == (2, 1)

        write(exp, PROGRAM.replace("param n = 20", "param n = 21") + "# just a comment\n")
        t = w.wait_for(r"watching for changes\.\.\.", 3)
        assert _runs(t)[-1] == (0, 3)

        write(exp, PROGRAM.replace("param n = 20", "param n = 2x1"))  # a syntax error: keep watching
        t = w.wait_for(r"fix the errors above")
        assert re.search(r"w\.exp:2:12: error\[E100\]", t), t

        write(tmp_path / "words.txt", "alpha\nbeta\ngamma\n")  # a data file the program reads
        write(exp, PROGRAM.replace("param n = 20", "param n = 21"))
        t = w.wait_for(r"watching for changes\.\.\.", 4)
        assert _runs(t)[-1] == (2, 1)  # words and both; sums(n = 21) is cached
    finally:
        w.stop()


SLOW = """\
experiment cancel_me { seed = 0  device = "cpu" }
param steps = 3000
data d = arithmetic(n = 200, digits = 2)
model base = gpt2(layers = 1, width = 16, heads = 2, context = 16)
model m = finetune(base, d, steps = steps, lr = 1e-3, batch = 2, context = 16, checkpoint_every = 50)
"""


@pytest.mark.slow
def test_an_edit_during_a_run_cancels_it(tmp_path, subprocess_env):
    exp = write(tmp_path / "s.exp", SLOW)
    w = Watch(exp, tmp_path / "store", subprocess_env)
    try:
        w.wait_for(r"run\s+m \(finetune")
        time.sleep(1.0)
        write(exp, SLOW.replace("param steps = 3000", "param steps = 5"))
        t = w.wait_for(r"change during the run: cancelling it")
        t = w.wait_for(r"watching for changes\.\.\.", 2, timeout=120)
        # the cancelled run is reported, the new one finished with the short fine-tune
        assert "cancelled" in t
        assert _runs(t)[-1] == (1, 2)
    finally:
        w.stop()
