"""Figures of a POET run (matplotlib, Agg backend): ANNECS over iterations, the scores of the active
pairs, and the map of environment parameters (first two coordinates)."""

from __future__ import annotations

from pathlib import Path


def write_plots(out: Path, history: list[dict], envs: list[dict], coords: list[list[float]], names: list[str], solved: float, curve: list[int]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    its = [r["iteration"] for r in history]

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step(its, curve, where="post")
    ax.set(xlabel="iteration", ylabel="ANNECS", title=f"ANNECS (solved >= {solved:g})")
    fig.tight_layout()
    fig.savefig(out / "annecs.png", dpi=100)
    plt.close(fig)
    files.append("annecs.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    ids = sorted({int(k) for r in history for k in r["scores"]})
    for i in ids:
        xs = [r["iteration"] for r in history if str(i) in r["scores"]]
        ys = [r["scores"][str(i)] for r in history if str(i) in r["scores"]]
        ax.plot(xs, ys, lw=1, label=f"env {i}")
    ax.axhline(solved, color="k", ls=":", lw=1)
    ax.set(xlabel="iteration", ylabel="score", title="scores of active pairs")
    if len(ids) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "scores.png", dpi=100)
    plt.close(fig)
    files.append("scores.png")

    fig, ax = plt.subplots(figsize=(5, 5))
    if coords and len(coords[0]) >= 1:
        xs = [c[0] for c in coords]
        ys = [c[1] if len(c) > 1 else 0.0 for c in coords]
        colors = ["tab:green" if e.get("solved_at") is not None else ("tab:gray" if e.get("archived_at") is not None else "tab:blue") for e in envs]
        ax.scatter(xs, ys, c=colors, s=30)
        for e, x, y in zip(envs, xs, ys):
            ax.annotate(str(e["id"]), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set(xlabel=names[0] if names else "", ylabel=names[1] if len(names) > 1 else "")
    ax.set_title("environments (green: solved, gray: archived)")
    fig.tight_layout()
    fig.savefig(out / "envs.png", dpi=100)
    plt.close(fig)
    files.append("envs.png")
    return files
