"""`pruner = predictor(...)`: stop a search's candidates whose early learning curve predicts a poor
final objective (the meta-LSTM of Rawal & Miikkulainen, "From nodes to networks").

    search evo {
      objective = minimize(ppl)
      strategy = evolution(population = 8)
      generations = 4
      pruner = predictor(observe = 100, metric = "loss", keep = 0.5, warmup = 10, hidden = 16)
    }

The LSTM and the pruning rule are in expc.runtime.search.predictor (torch, imported when a search
with this pruner starts)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from expc.runtime.registry import Params, op


class PredictorParams(Params):
    observe: int = Field(100, ge=1, description="steps of a candidate's curve the prediction reads (the metric's "
                         "values logged at steps up to this one); it is decided on from then on")
    metric: str = Field("loss", min_length=1, description="the logged metric whose curve is read (fit logs loss every "
                        "10 steps)")
    keep: float = Field(0.5, gt=0.0, le=1.0, description="a candidate predicted outside the best `keep` share of the "
                        "finished candidates' objectives is stopped")
    warmup: int = Field(10, ge=1, description="finished candidates (run to the end) before any is stopped: the "
                        "predictor's first training set")
    hidden: int = Field(16, ge=1, le=1024, description="the predictor LSTM's hidden size")
    seed: int = Field(0, description="the predictor's initialization seed")

    def make(self) -> Any:
        from expc.runtime.search.predictor import PredictorPruner

        return PredictorPruner(self.observe, self.keep, self.warmup, self.hidden, self.seed)


@op("predictor", params=PredictorParams, returns="pruner", inline=True)
def predictor(p: PredictorParams, ctx=None) -> None:
    """Learning-curve prediction pruning: a small LSTM, trained online on the finished candidates'
    curves (the `metric` values logged up to step `observe`) and their final objectives, predicts
    where a running candidate's objective will rank among theirs once it passes `observe`; the
    candidate is stopped when it is predicted outside the best `keep` share. Nothing is stopped
    before `warmup` candidates have finished. Each prediction, mapped back to the objective's scale,
    is kept with its trial (Optuna system attribute expc_predicted), to compare with the objectives
    of the candidates that finished. Only candidates run in the search's process (parallel = 1) are
    pruned."""
