"""ANNECS (Enhanced POET): the accumulated number of novel environments created and solved.

An environment counts once it was admitted by reproduction (so it passed the minimal criterion when
created; the initial environment does not count) and the score of its pair reached `solved` at some
iteration so far. Computed from the per-iteration history alone, so any threshold can be asked after
the run."""

from __future__ import annotations


def annecs_curve(history: list[dict], solved: float) -> list[int]:
    created: set[int] = set()
    solved_ids: set[int] = set()
    curve = []
    for rec in history:
        for a in rec.get("admitted", []):
            created.add(int(a["id"]) if isinstance(a, dict) else int(a))
        for k, score in rec.get("scores", {}).items():
            i = int(k)
            if i in created and score is not None and score >= solved:
                solved_ids.add(i)
        curve.append(len(solved_ids))
    return curve
