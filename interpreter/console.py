"""What `expc run / show / runs` print: progress while running, result tables after."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from expc.interpreter.executor import Events


def _rich_console(stderr: bool = True):
    from rich.console import Console as RC

    return RC(stderr=stderr, highlight=False)


class Console:
    """Progress on stderr, one line per node; results on stdout. On a terminal, progress is a rich bar;
    off one (a log file, CI), a plain line per node at most every `interval` seconds and always its
    last, with units people read (MB and MB/s for bytes, steps/s, ETA)."""

    def __init__(self, interval: float = 5.0) -> None:
        self.err = _rich_console()
        self.interval = interval
        self._progress = None
        self._plain: dict[str, list[PlainProgress]] = {}  # node -> its unfinished plain progress lines

    def events(self) -> Events:
        return Events(node_start=self._start, node_done=self._done, progress=self._bar, warning=self._warn)

    def _start(self, pn) -> None:
        self.err.print(f"[bold]run[/bold]    {pn.display} [dim]({pn.op}, {pn.key[:10]})[/dim]")

    def _done(self, pn, status: str, seconds: float) -> None:
        for p in self._plain.pop(pn.display, []):
            p.finish()
        if status == "cached":
            self.err.print(f"[dim]cached {pn.display} ({pn.op})[/dim]")
        else:
            self.err.print(f"[green]done[/green]   {pn.display} [dim]{seconds:.2f}s[/dim]")
        self._stop_bar()

    def _warn(self, diag) -> None:
        from expc.spec.diagnostics import render

        print(render([diag]), file=sys.stderr)

    def _bar(self, description: str, total: int, node: str, unit: str = "step"):
        if not self.err.is_terminal:
            p = PlainProgress(f"{node}: {description}", total, unit, self._print_plain, self.interval)
            self._plain.setdefault(node, []).append(p)
            return p.advance
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        if self._progress is None:
            self._progress = Progress(TextColumn("       {task.description}"), BarColumn(),
                                      TextColumn("{task.fields[amount]}"), TimeRemainingColumn(),
                                      console=self.err, transient=True)
            self._progress.start()
        task = self._progress.add_task(f"{node}: {description}", total=total, amount=amount(0, total, unit))
        done = [0]

        def advance(n: int = 1) -> None:
            done[0] += n
            self._progress.update(task, advance=n, amount=amount(done[0], total, unit))

        return advance

    def _print_plain(self, line: str) -> None:
        self.err.print(f"       {line}", markup=False, highlight=False)

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def close(self) -> None:
        self._stop_bar()
        for lines in self._plain.values():
            for p in lines:
                p.finish()
        self._plain.clear()

    def results(self, session, result) -> None:
        from expc.interpreter.reports import print_reports
        from expc.interpreter.results import from_session

        results = from_session(session, result)
        run_dir = session.run_dir(result.run_id)
        rows = [(name, r.kind or "", r.op, result_text(r, run_dir / name)) for name, r in results.items()]
        print_table(["node", "kind", "op", "result"], rows)
        ran = len(result.ran)
        cached = sum(1 for _, _, s in result.trail if s == "cached")
        print(f"run {result.run_id}: {ran} ran, {cached} cached; results in {_rel(run_dir)}")
        print_reports(session, result)


class PlainProgress:
    """Progress for logs: a line when `interval` seconds have passed since the last one, and the last
    line (the total, the time it took, the rate) when the work is done or its node finishes, so a
    0.04 s merge prints one line and an hour of training a few hundred, not one per update."""

    def __init__(self, label: str, total: int, unit: str, emit, interval: float = 5.0, clock=time.monotonic):
        self.label, self.total, self.unit = label, total, unit
        self.emit, self.interval, self.clock = emit, interval, clock
        self.n = 0
        self.started = self.last = clock()
        self.shown = -1  # the count last printed
        self.finished = False

    def advance(self, n: int = 1) -> None:
        if self.finished:
            return
        self.n += n
        now = self.clock()
        if self.total and self.n >= self.total:
            self.finish()
        elif now - self.last >= self.interval:
            self.last = now
            self.shown = self.n
            elapsed = now - self.started
            rate = self.n / elapsed if elapsed > 0 else 0.0
            eta = f", ETA {duration((self.total - self.n) / rate)}" if rate > 0 and self.total else ""
            self.emit(f"{self.label} {amount(self.n, self.total, self.unit)}, {speed(rate, self.unit)}{eta}")

    def finish(self) -> None:
        """Print the last line, once (unless nothing happened since the last line printed)."""
        if self.finished:
            return
        self.finished = True
        if self.n in (0, self.shown):
            return
        elapsed = self.clock() - self.started
        rate = f", {speed(self.n / elapsed, self.unit)}" if elapsed > 0 else ""
        self.emit(f"{self.label} {amount(self.n, self.total, self.unit)} in {duration(elapsed)}{rate}")


def amount(n: int, total: int | None, unit: str) -> str:
    """`231/482 MB`, `60/150 steps`, `3 trials`."""
    if unit == "B":
        top = max(total or 0, n)
        scale, name = (1e9, "GB") if top >= 10e9 else (1e6, "MB") if top >= 1e6 else (1e3, "kB")
        digits = 0 if top >= 100 * scale or scale == 1e3 else 1
        shown = f"{n / scale:.{digits}f}"
        return f"{shown}/{total / scale:.{digits}f} {name}" if total else f"{shown} {name}"
    plural = unit if unit.endswith("s") else f"{unit}s"
    return f"{n}/{total} {plural}" if total else f"{n} {plural}"


def speed(rate: float, unit: str) -> str:
    if unit == "B":
        return f"{rate / 1e9:.2f} GB/s" if rate >= 1e9 else f"{rate / 1e6:.0f} MB/s" if rate >= 10e6 \
            else f"{rate / 1e6:.2f} MB/s"
    plural = unit if unit.endswith("s") else f"{unit}s"
    return f"{rate:.3g} {plural}/s"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.{2 if seconds < 1 else 1 if seconds < 10 else 0}f} s"
    m, s = divmod(int(seconds + 0.5), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def result_text(r, linked: Path) -> str:
    """A result's summary, and where its files are: `n=3 examples, 27 bytes; data in .expc/runs/1/head`."""
    tags = _artifact_tags(r.data)
    if tags and linked.exists():
        return f"{r.summary}; {tags} in {_rel(linked)}"
    return r.summary


def _artifact_tags(value: Any) -> str:
    """`model`, or `data` for a record of artifacts (a split); "" when the value holds none."""
    from expc.runtime.api import Artifact

    if isinstance(value, Artifact):
        return value.tag
    if isinstance(value, dict):
        return ", ".join(sorted({v.tag for v in value.values() if isinstance(v, Artifact)}))
    return ""


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_table(headers: list[str], rows: list[tuple], title: str | None = None) -> None:
    """A plain aligned table on stdout (stable in logs and tests; no terminal codes)."""
    cols = [list(map(str, c)) for c in zip(headers, *rows)] if rows else [[h] for h in headers]
    widths = [max(len(x) for x in col) for col in cols]
    if title:
        print(title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


def print_plan(rows: list[tuple[str, str, str, str]]) -> None:
    print_table(["node", "op", "status", "why"], rows)
    n_run = sum(1 for r in rows if r[2] == "run")
    print(f"{n_run} to run, {sum(1 for r in rows if r[2] == 'cached')} cached"
          + (f", {sum(1 for r in rows if r[2] == 'pending')} pending" if any(r[2] == "pending" for r in rows) else ""))


def print_runs(rows: list[tuple]) -> None:
    out = []
    for rid, file, exp, status, started, finished, ran, cached in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        dur = f"{finished - started:.1f}s" if finished else "-"
        out.append((rid, when, exp or "", Path(file).name, status, ran, cached, dur))
    print_table(["run", "started", "experiment", "file", "status", "ran", "cached", "time"], out)


def print_run(results, runs) -> None:
    """`expc show`: a recorded run's results (see expc.interpreter.results.from_registry), its reports,
    and what ran."""
    from expc.interpreter.reports import print_shown
    from expc.runtime.registry import load_registry

    types = load_registry().types

    print(f"run {results.run_id}: {results.experiment} ({results.file}) {results.status}; "
          f"overrides: {' '.join(results.overrides) or '-'}")
    table = [(name, r.kind or "", result_text(r, results.run_dir / name)) for name, r in results.items()]
    if table:
        print_table(["node", "kind", "result"], table)
    for name, r in results.items():
        shown = types.show(r.type, r.data) if r.type else None
        if shown is not None:
            linked = results.run_dir / name
            print_shown(name, shown, linked if linked.exists() else results.store / "objects" / r.key[:2] / r.key)
    # what ran, one line per node and status (a search evaluates the same nodes once per trial)
    counts: dict[tuple[str, str, str], list[float]] = {}
    for n, _, op, st, secs, _, _ in runs.node_runs(results.run_id):
        if st != "cached":
            counts.setdefault((n, op, st), []).append(secs or 0.0)
    if counts:
        print()
        rows = [(n, op, st, len(t), f"{sum(t):.2f}s") for (n, op, st), t in counts.items()]
        print_table(["node", "op", "status", "times", "total"], rows)
