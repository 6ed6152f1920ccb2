"""Continual-learning metrics of an accuracy matrix R, R[i][j] = accuracy on task j after training tasks
0..i (None where task j was not yet trained). Pure Python: no torch.

Definitions follow Avalanche (avalanche.evaluation.metrics): the forgetting of task j is its accuracy
right after training it minus its accuracy at the end, R[j][j] - R[T-1][j], and the stream's is the
mean over every task but the last (StreamForgetting); backward transfer is its negative (Lopez-Paz &
Ranzato 2017, BWT = mean_j R[T-1][j] - R[j][j]). The average accuracy is the mean of the last row;
Avalanche's StreamAccuracy pools the test examples instead, given here as `pooled` (tests check both
against a transcription of Avalanche's bookkeeping)."""

from __future__ import annotations


def last_row(R: list[list[float | None]]) -> list[float]:
    return [float(x) for x in R[-1] if x is not None]


def avg_accuracy(R: list[list[float | None]], n_test: list[int] | None = None) -> dict:
    row = last_row(R)
    out = {"value": sum(row) / len(row), "last_row": row, "tasks": len(row)}
    if n_test is not None:
        n = n_test[: len(row)]
        out["pooled"] = sum(a * k for a, k in zip(row, n)) / sum(n)
    return out


def forgetting(R: list[list[float | None]]) -> dict:
    """Avalanche's StreamForgetting after the last task (value), per task, and the maximum-based
    forgetting of Chaudhry et al. 2018 (max over earlier rows minus the last)."""
    T = len(R)
    per_task = [float(R[j][j]) - float(R[T - 1][j]) for j in range(T - 1)]
    peak = [max(float(R[i][j]) for i in range(j, T - 1)) - float(R[T - 1][j]) for j in range(T - 1)]
    value = sum(per_task) / len(per_task) if per_task else 0.0
    return {"value": value, "per_task": per_task, "max_based": sum(peak) / len(peak) if peak else 0.0}


def bwt(R: list[list[float | None]]) -> dict:
    """Backward transfer (Lopez-Paz & Ranzato 2017): mean over j < T-1 of R[T-1][j] - R[j][j]."""
    T = len(R)
    per_task = [float(R[T - 1][j]) - float(R[j][j]) for j in range(T - 1)]
    return {"value": sum(per_task) / len(per_task) if per_task else 0.0, "per_task": per_task}
