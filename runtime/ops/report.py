"""Reports (kind `report`): a results table, measured cost comparisons, and PNG plots.

    report results {
      table = {base: {math: ppl_b_math, mix: ppl_b_mix}, dem: {math: ppl_d_math, mix: ppl_d_mix}}
      cost  = cost(sweep, m_mix)
      plot  = [history(sweep), response(sweep), curves(m_math, m_code)]
    }

`table` is a record of rows; a row is one value (a metric shows its `member`, default "value") or a
record of columns. A list `table = [ppl_base, ppl_dem(sweep.best)]` is a record whose rows are named
after the expressions (the field is Labelled).

Plots and costs read the run registry (loss curves, node times), so their fields are Deferred: the
report receives node names and looks the nodes up itself. `expc run` / `expc show` print the table
and the lines; the plots are PNG files in the report's result directory.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from expc.runtime.registry import Deferred, Input, Labelled, Params, Variadic, op
from expc.runtime.types import Shown, value_type

def _report_summary(v) -> str | None:
    """`table of 4 rows (base, data mixing, ...) x 4 columns, 1 cost line, 3 plots`."""
    if not isinstance(v, dict):
        return None
    parts = []
    table = v.get("table")
    if isinstance(table, dict) and table.get("headers"):
        rows = table.get("rows") or []
        names = [str(r[0]) for r in rows[:3] if r] + (["..."] if len(rows) > 3 else [])
        cols = len(table["headers"]) - 1
        parts.append(f"table of {len(rows)} row{'s' * (len(rows) != 1)} ({', '.join(names)})"
                     f" x {cols} column{'s' * (cols != 1)}")
    for what, items in (("cost line", v.get("lines")), ("plot", v.get("plots"))):
        if items:
            parts.append(f"{len(items)} {what}{'s' * (len(items) != 1)}")
    return ", ".join(parts) or "empty"


def _report_shown(v) -> Shown | None:
    """The report's table, its measured cost lines and its plots (files in its directory)."""
    if not isinstance(v, dict):
        return None
    table = v.get("table") if isinstance(v.get("table"), dict) else {}
    return Shown(headers=tuple(table.get("headers") or ()), rows=tuple(tuple(r) for r in table.get("rows") or ()),
                 lines=tuple(v.get("lines") or ()), files=tuple(v.get("plots") or ()))


REPORT = value_type("report", "a report (tables and plots)", kinds={"report"}, summary=_report_summary,
                    show=_report_shown)
PLOT = value_type("plot", "a report plot or measured comparison (history, response, curves, cost)", node=False)

# ------------------------------------------------------------------------------------ plots and costs


class HistoryParams(Params):
    search: Input["search"] = Field(description="the search whose trials to plot")


@op("history", params=HistoryParams, returns="plot", inline=True)
def history(p: HistoryParams, ctx=None) -> None:
    """Objective per trial with the best so far (two objectives: their scatter with the Pareto set); for a
    strategy search, the best and mean objective of the population per generation."""


@op("response", params=HistoryParams, returns="plot", inline=True)
def response(p: HistoryParams, ctx=None) -> None:
    """Objective and measures against each searched param, a panel per (objective or measure, param): the
    shape of the search landscape, or a sweep's response curves (log axes for loguniform params)."""


@op("species", params=HistoryParams, returns="plot", inline=True)
def species(p: HistoryParams, ctx=None) -> None:
    """A strategy search's species sizes per generation, a stacked area (one species for a strategy that
    does not speciate: the population)."""


@op("diversity", params=HistoryParams, returns="plot", inline=True)
def diversity(p: HistoryParams, ctx=None) -> None:
    """A strategy search's population diversity per generation: the mean pairwise distance of its
    candidates (Genome.distance for architecture params, range shares for numbers)."""


class CurvesParams(Params):
    nodes: Annotated[list[Input["model", "metric", "any"]], Variadic()] = Field(
        min_length=1, description="nodes whose logged metric to plot (fine-tunes log `loss`)"
    )
    metric: str = Field("loss", description="the metric name in the run registry")


@op("curves", params=CurvesParams, returns="plot", inline=True)
def curves(p: CurvesParams, ctx=None) -> None:
    """Logged metric curves (training loss by step) of nodes, from the run registry."""


class CostParams(Params):
    search: Input["search"] = Field(description="the search (its trials are cheap re-evaluations)")
    retrain: Input["model"] = Field(description="a training node whose one run is what each grid point of "
                                    "the alternative would cost (e.g. the data-mixing fine-tune)")


@op("cost", params=CostParams, returns="plot", inline=True)
def cost(p: CostParams, ctx=None) -> None:
    """A measured comparison: the search's wall time against `trials` runs of `retrain`, both read from
    the run registry (the seconds they took when they ran, whichever run that was)."""


# ----------------------------------------------------------------------------------------------- report

_PLOTS = ("history", "response", "curves", "matrix", "species", "diversity")


class ReportParams(Params):
    table: Annotated[dict[str, Any] | None, Labelled()] = Field(
        None, description="rows: {name: value} or {name: {column: value}}, or a list [a, b, f(x)] of values "
        "whose rows are named after their expressions"
    )
    columns: list[str] | None = Field(None, description="the columns to show, in order (default: all)")
    member: str = Field("value", description="the member of a metric shown in a cell (e.g. nats_per_byte)")
    digits: int = Field(4, ge=1, le=12, description="significant digits of numbers")
    plot: Annotated[list[Any] | None, Deferred()] = Field(
        None, description="history(search), response(search), curves(node, ...), matrix(continual run), "
        "species(search), diversity(search)"
    )
    cost: Annotated[Any, Deferred()] = Field(None, description="cost(search, retrain), or a list of them")

    @field_validator("plot")
    @classmethod
    def _plot(cls, v):
        for x in v or []:
            if not (isinstance(x, dict) and x.get("$op") in _PLOTS):
                raise ValueError("expected a list of " + ", ".join(f"{n}(...)" for n in _PLOTS))
        return v

    @field_validator("cost")
    @classmethod
    def _cost(cls, v):
        for x in v if isinstance(v, list) else ([] if v is None else [v]):
            if not (isinstance(x, dict) and x.get("$op") == "cost"):
                raise ValueError("expected cost(search, retrain) or a list of them")
        return v


@op("report", params=ReportParams, kinds={"report"}, returns="report", version=1)
def report(p: ReportParams, ctx) -> dict:
    """A results table (printed by `expc run` and `expc show`), measured cost lines, and PNG plots in the
    report's directory. Returns {"table": {"headers", "rows"}, "lines": [...], "plots": [paths]}."""
    from expc.runtime.report.build import build_report

    return build_report(p, ctx)
