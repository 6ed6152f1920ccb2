"""Report output after a run: tables that report nodes computed (printed by `expc run` and `expc show`)."""

from __future__ import annotations

from pathlib import Path


def print_reports(session, result) -> None:
    keys = {node: key for node, key, _, _ in session.runs.results(result.run_id)}
    for name, value in result.results.items():
        node = session.program.nodes[name]
        if node.kind != "report" or not isinstance(value, dict):
            continue
        key = keys.get(name)
        linked = session.run_dir(result.run_id) / name
        print_report(name, value, linked if linked.exists() else (session.store.path(key) if key else None))


def print_report(name: str, value: dict, directory: Path | None) -> None:
    """One report's table, lines and plot paths (plots are stored relative to the report's directory)."""
    from expc.interpreter.console import print_table

    table = value.get("table")
    if isinstance(table, dict) and table.get("headers"):
        print()
        print_table(table["headers"], [tuple(r) for r in table.get("rows", [])], title=f"report {name}")
    for text in value.get("lines", []) or []:
        print(text)
    for plot in value.get("plots", []) or []:
        print(f"plot: {directory / plot if directory is not None else plot}")
