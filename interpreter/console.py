"""What `expc run / show / runs` print: progress while running, result tables after."""

from __future__ import annotations

import json
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
        from expc.runtime.api import Artifact

        run_dir = session.run_dir(result.run_id)
        rows = []
        for name, value in result.results.items():
            node = session.program.nodes[name]
            artifacts = [value] if isinstance(value, Artifact) else (
                [v for v in value.values() if isinstance(v, Artifact)] if isinstance(value, dict) else [])
            if artifacts and (run_dir / name).exists():
                tags = sorted({a.tag for a in artifacts})
                members = "" if isinstance(value, Artifact) else " (" + ", ".join(
                    k for k, v in value.items() if isinstance(v, Artifact)) + ")"
                shown = f"{', '.join(tags)}{members}{_fields(value)} in {_rel(run_dir / name)}"
            else:
                shown = summarize(value)
            rows.append((name, node.kind or "", node.op, shown))
        print_table(["node", "kind", "op", "result"], rows)
        ran = len(result.ran)
        cached = sum(1 for _, _, s in result.trail if s == "cached")
        print(f"run {result.run_id}: {ran} ran, {cached} cached; results in {_rel(run_dir)}")
        from expc.interpreter.reports import print_reports

        print_reports(session, result)


def _fields(value: Any) -> str:
    """A few scalar fields of an artifact: ` (annecs=1, transfers=2)`."""
    from expc.runtime.api import Artifact

    if not isinstance(value, Artifact):
        return ""
    items = [(k, v) for k, v in value.model_dump(exclude={"path"}).items()
             if isinstance(v, (int, float, str)) and not isinstance(v, bool) and v != ""][:4]
    return " (" + ", ".join(f"{k}={_num(v)}" for k, v in items) + ")" if items else ""


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summarize(value: Any) -> str:
    from expc.runtime.api import Artifact

    if isinstance(value, Artifact):
        return f"{value.tag} at {value.path}"
    if isinstance(value, dict) and "value" in value and isinstance(value["value"], (int, float)):
        extra = {k: v for k, v in value.items() if k != "value" and isinstance(v, (int, float, str))}
        more = ", ".join(f"{k}={_num(v)}" for k, v in list(extra.items())[:4])
        return _num(value["value"]) + (f"  ({more})" if more else "")
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, dict) and any(isinstance(v, Artifact) for v in value.values()):
        return ", ".join(f"{k}: {summarize(v)}" for k, v in value.items())
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


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


def print_run(runs, row, root: Path) -> None:
    rid, file, exp, command, overrides, started, finished, status = row
    print(f"run {rid}: {exp} ({file}) {status}; overrides: {' '.join(json.loads(overrides or '[]')) or '-'}")
    run_dir = Path(root) / "runs" / str(rid)
    results = runs.results(rid)
    table = []
    for node, key, kind, summary in results:
        value = json.loads(summary)
        linked = run_dir / node
        artifacts = _artifact_tags(value)
        if artifacts and linked.exists():
            table.append((node, kind or "", f"{artifacts} in {_rel(linked)}"))
        else:
            table.append((node, kind or "", _show_summary(value)))
    if table:
        print_table(["node", "kind", "result"], table)
    from expc.interpreter.reports import print_report

    for node, key, kind, summary in results:
        if kind == "report" and isinstance(value := json.loads(summary), dict):
            linked = run_dir / node
            print_report(node, value, linked if linked.exists() else Path(root) / "objects" / key[:2] / key)
    # what ran, one line per node and status (a search evaluates the same nodes once per trial)
    counts: dict[tuple[str, str, str], list[float]] = {}
    for n, _, op, st, secs, _, _ in runs.node_runs(rid):
        if st != "cached":
            counts.setdefault((n, op, st), []).append(secs or 0.0)
    if counts:
        print()
        rows = [(n, op, st, len(t), f"{sum(t):.2f}s") for (n, op, st), t in counts.items()]
        print_table(["node", "op", "status", "times", "total"], rows)


def _artifact_tags(value: Any) -> str:
    """`model`, or `data (train, test)` for a record of artifacts; "" when the value holds none."""
    if isinstance(value, dict) and "$artifact" in value:
        return value["$artifact"]
    if isinstance(value, dict):
        parts = {k: v["$artifact"] for k, v in value.items() if isinstance(v, dict) and "$artifact" in v}
        if parts:
            return f"{', '.join(sorted(set(parts.values())))} ({', '.join(parts)})"
    return ""


def _show_summary(s: Any) -> str:
    if isinstance(s, dict) and "$artifact" in s:
        return f"{s['$artifact']} at {s.get('path')}"
    return summarize(s)
