"""The accuracy matrix of a continual run as a heat map (matplotlib, Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def matrix_figure(run: dict, name: str):
    R = run["matrix"]
    T = len(R[0]) if R else 0
    grid = np.array([[np.nan if x is None else x for x in row] for row in R], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * T, 0.9 + 0.55 * len(R)))
    im = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis")
    for i in range(len(R)):
        for j in range(T):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if grid[i, j] > 0.6 else "white")
    ax.set_xticks(range(T), [f"t{j}" for j in range(T)])
    ax.set_yticks(range(len(R)), [f"t{i}" for i in range(len(R))])
    ax.set_xlabel("evaluated on task")
    ax.set_ylabel("after training task")
    ax.set_title(f"{name}: {run['method']}\navg acc {run['avg_accuracy']:.3f}, BWT {run['bwt']:+.3f}", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig
