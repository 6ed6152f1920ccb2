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
    """Progress on stderr (rich), one line per node; results on stdout."""

    def __init__(self) -> None:
        self.err = _rich_console()
        self._progress = None
        self._tasks: dict[str, Any] = {}

    def events(self) -> Events:
        return Events(node_start=self._start, node_done=self._done, progress=self._bar, warning=self._warn)

    def _start(self, pn) -> None:
        self.err.print(f"[bold]run[/bold]    {pn.display} [dim]({pn.op}, {pn.key[:10]})[/dim]")

    def _done(self, pn, status: str, seconds: float) -> None:
        if status == "cached":
            self.err.print(f"[dim]cached {pn.display} ({pn.op})[/dim]")
        else:
            self.err.print(f"[green]done[/green]   {pn.display} [dim]{seconds:.2f}s[/dim]")
        self._stop_bar()

    def _warn(self, diag) -> None:
        from expc.spec.diagnostics import render

        print(render([diag]), file=sys.stderr)

    def _bar(self, description: str, total: int, node: str):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        if not self.err.is_terminal:  # logs and CI: a line every ~10% instead of a bar
            state = {"n": 0, "next": 0.1}

            def advance_plain(n: int = 1) -> None:
                state["n"] += n
                if total and state["n"] / total >= state["next"]:
                    self.err.print(f"       {node}: {description} {state['n']}/{total}")
                    state["next"] += 0.1

            return advance_plain
        if self._progress is None:
            self._progress = Progress(TextColumn("       {task.description}"), BarColumn(),
                                      TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(),
                                      console=self.err, transient=True)
            self._progress.start()
        task = self._progress.add_task(f"{node}: {description}", total=total)
        return lambda n=1: self._progress.advance(task, n)

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def close(self) -> None:
        self._stop_bar()

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
    from expc.interpreter.reports import print_report

    print(f"run {results.run_id}: {results.experiment} ({results.file}) {results.status}; "
          f"overrides: {' '.join(results.overrides) or '-'}")
    table = [(name, r.kind or "", result_text(r, results.run_dir / name)) for name, r in results.items()]
    if table:
        print_table(["node", "kind", "result"], table)
    for name, r in results.items():
        if r.kind == "report" and isinstance(r.data, dict):
            linked = results.run_dir / name
            print_report(name, r.data, linked if linked.exists() else results.store / "objects" / r.key[:2] / r.key)
    # what ran, one line per node and status (a search evaluates the same nodes once per trial)
    counts: dict[tuple[str, str, str], list[float]] = {}
    for n, _, op, st, secs, _, _ in runs.node_runs(results.run_id):
        if st != "cached":
            counts.setdefault((n, op, st), []).append(secs or 0.0)
    if counts:
        print()
        rows = [(n, op, st, len(t), f"{sum(t):.2f}s") for (n, op, st), t in counts.items()]
        print_table(["node", "op", "status", "times", "total"], rows)
