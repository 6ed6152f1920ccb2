"""Plots of a strategy search, per generation: history (best and mean objective), species (sizes, a
stacked area) and diversity (mean pairwise genome distance). They read the search result's
"generations" (expc.runtime.search.generations)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from expc.runtime.api import OpError  # noqa: E402


def generations_of(name: str, result: dict, what: str, field: str) -> list[dict]:
    gens = result.get("generations")
    if not gens:
        raise OpError(f"{what}({name}) plots a strategy search's generations, and '{name}' used a sampler",
                      field=field, hint="search with strategy = evolution(...), generations = N")
    return gens


def history(name: str, result: dict, field: str):
    gens = generations_of(name, result, "history", field)
    xs = [g["generation"] for g in gens]
    direction = (result.get("directions") or ["maximize"])[0]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [g.get("best") for g in gens], "o-", color="C3", label="best in population")
    ax.plot(xs, [g.get("mean") for g in gens], "s--", color="C0", label="mean of population")
    finished = [t for t in result.get("trials", []) if t.get("state") == "complete" and "value" in t]
    ax.scatter([t["generation"] for t in finished], [t["value"] for t in finished], s=10, color="0.6",
               label="candidates", zorder=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel(f"{(result.get('objectives') or ['objective'])[0]} ({direction})")
    ax.set_title(f"search {name}")
    ax.legend()
    return fig


def species(name: str, result: dict, field: str):
    gens = generations_of(name, result, "species", field)
    sizes = [list(g.get("species") or [g.get("size", 0)]) for g in gens]
    width = max(len(s) for s in sizes)
    rows = [[s[i] if i < len(s) else 0 for s in sizes] for i in range(width)]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.stackplot([g["generation"] for g in gens], rows, labels=[f"species {i}" for i in range(width)])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("candidates")
    ax.set_title(f"search {name}: species sizes")
    if width <= 12:
        ax.legend(loc="upper left", fontsize="small")
    return fig


def diversity(name: str, result: dict, field: str):
    gens = generations_of(name, result, "diversity", field)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([g["generation"] for g in gens], [g.get("diversity") for g in gens], "o-")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("mean pairwise distance")
    ax.set_title(f"search {name}: population diversity")
    return fig
