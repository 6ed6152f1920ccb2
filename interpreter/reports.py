"""Report output after a run: tables that report nodes computed (printed by `expc run` and `expc show`)."""

from __future__ import annotations


def print_reports(session, result) -> None:
    from expc.interpreter.console import print_table

    for name, value in result.results.items():
        node = session.program.nodes[name]
        if node.kind != "report" or not isinstance(value, dict):
            continue
        table = value.get("table")
        if isinstance(table, dict) and table.get("headers"):
            print()
            print_table(table["headers"], [tuple(r) for r in table.get("rows", [])], title=f"report {name}")
        for text in value.get("lines", []) or []:
            print(text)
        for plot in value.get("plots", []) or []:
            print(f"plot: {plot}")
