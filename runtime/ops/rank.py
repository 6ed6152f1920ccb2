"""Rank correlation over a search's trials (kind `eval`): does one measurement order the trials as
another does? GTN-NAS (a cheap proxy's ranking of architectures against full training), a Petri
dish's ranking of motifs, a learning-curve predictor's ranking of candidates.

    eval rho = rank_correlation(nas, x = "gtn", y = "real", method = "spearman")

The statistics are scipy.stats' spearmanr and kendalltau."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from expc.runtime.registry import Input, Params, op


class RankParams(Params):
    search: Input["search"] = Field(description="a search or sweep whose trials were measured")
    x: str = Field(min_length=1, description='a measure, "objective" (the trials\' objective value), a numeric param, '
                   'or "predicted" (the predictor pruner\'s forecast of the final value)')
    y: str = Field(min_length=1, description="the same for the other ranking")
    method: Literal["spearman", "kendall"] = Field("spearman", description="Spearman's rho or Kendall's tau-b")


@op("rank_correlation", params=RankParams, kinds={"eval"}, returns="metric", version=1)
def rank_correlation(p: RankParams, ctx) -> dict:
    """The rank correlation of two measurements over a search's finished trials (value, in [-1, 1]);
    also `p` (two-sided p-value of no correlation), `n` (trials with both values) and the pairs. A trial
    missing either value is left out."""
    from expc.runtime.search.rank import rank_correlation as compute

    return compute(p.search, p.x, p.y, p.method)
