"""Results shown in full after a run and by `expc show`: whatever a value type declares it shows
(expc.runtime.types.Shown: a report's table, its lines, its plots), for any type that declares it."""

from __future__ import annotations

from pathlib import Path


def print_reports(session, result) -> None:
    keys = {node: key for node, key, _, _ in session.runs.results(result.run_id)}
    for name, value in result.results.items():
        shown = session.registry.types.show(session.program.nodes[name].type, value)
        if shown is None:
            continue
        key = keys.get(name)
        linked = session.run_dir(result.run_id) / name
        print_shown(name, shown, linked if linked.exists() else (session.store.path(key) if key else None))


def print_shown(name: str, shown, directory: Path | None) -> None:
    """One result's table, lines and files (files are named relative to the result's directory)."""
    from expc.interpreter.console import print_table

    if shown.headers:
        print()
        print_table(list(shown.headers), list(shown.rows), title=shown.title or f"report {name}")
    for text in shown.lines:
        print(text)
    for f in shown.files:
        print(f"plot: {directory / f if directory is not None else f}")
