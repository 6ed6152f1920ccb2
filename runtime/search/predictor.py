"""The learning-curve predictor behind `pruner = predictor(...)` (the meta-LSTM of Rawal & Miikkulainen,
"From nodes to networks"): a small LSTM reads a candidate's early learning curve (the values of the
pruner's metric its nodes logged at steps up to `observe`) and predicts where the candidate's final
objective will fall among the finished candidates'. It is trained online, on the finished candidates
of the same search, whenever more of them have finished; a running candidate predicted outside the
best `keep` share of the finished candidates is stopped, never before `warmup` have finished.

What the LSTM regresses on is the finished candidates' rank position (0 the best, 1 the worst) rather
than the raw objective: the decision is about ranks, and objectives of evolved architectures span
orders of magnitude (a perplexity of 10 next to one of 1e30) that would swamp a squared error. The
predicted position is mapped back to an objective value by interpolating between the finished
candidates' sorted objectives (a monotone map: ranks are unchanged); that value is what is kept.
Curve values enter as sign(v) * log(1 + |v|), standardized.

As an Optuna pruner (BasePruner), it serves the sampler searches and the strategy searches alike:
their trials report the metric with trial.report(value, step) and ask should_prune(). Each
prediction made at a candidate's first report at or after `observe` is kept as the trial's system
attribute "expc_predicted", so how well the predictor ranks the candidates that ran to the end can be
measured afterwards (`prediction_ranks`).

The model is trained with its own seeded generator from (seed, number of finished candidates), inside
torch.random.fork_rng: the same finished curves give the same model, so a search stays deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
import torch.nn as nn
from optuna.trial import TrialState

PREDICTED = "expc_predicted"
EPOCHS = 300  # full-batch Adam steps per training (150 underfit the 8 curves of a real search): ~1 s on a busy core


class CurveLSTM(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, curves: list[torch.Tensor]) -> torch.Tensor:
        if len({len(c) for c in curves}) == 1:  # the usual case (one logging schedule): no packing
            _, (h, _) = self.lstm(torch.stack(curves)[:, :, None])
        else:
            _, (h, _) = self.lstm(nn.utils.rnn.pack_sequence([c[:, None] for c in curves], enforce_sorted=False))
        return self.head(h[-1])[:, 0]


@dataclass
class CurvePredictor:
    """Curves (lists of metric values) -> final objective, trained on (curve, final) pairs."""

    hidden: int = 16
    seed: int = 0
    model: CurveLSTM | None = None
    scale: dict[str, float] = field(default_factory=dict)

    def fit(self, curves: list[list[float]], positions: list[float]) -> "CurvePredictor":
        """Train on curves and their rank positions in [0, 1]."""
        xs = [_squash(v) for c in curves for v in c]
        self.scale = {"x_mean": _mean(xs), "x_sd": _sd(xs)}
        inputs = [self._x(c) for c in curves]
        target = torch.tensor(positions, dtype=torch.float32)
        threads = torch.get_num_threads()
        # one thread: this net is tiny, and intra-op threads on a busy machine cost 40x (measured)
        torch.set_num_threads(1)
        try:
            self._train(inputs, target, len(curves))
        finally:
            torch.set_num_threads(threads)
        self.model.eval()
        return self

    def _train(self, inputs: list[torch.Tensor], target: torch.Tensor, n: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + n)
            self.model = CurveLSTM(self.hidden)
            opt = torch.optim.Adam(self.model.parameters(), lr=1e-2)
            for _ in range(EPOCHS):
                opt.zero_grad()
                loss = ((self.model(inputs) - target) ** 2).mean()
                loss.backward()
                opt.step()

    def _x(self, curve: list[float]) -> torch.Tensor:
        squashed = torch.tensor([_squash(v) for v in curve], dtype=torch.float32)
        return (squashed - self.scale["x_mean"]) / self.scale["x_sd"]

    @torch.no_grad()
    def predict(self, curve: list[float]) -> float:
        """The predicted rank position (0 the best; may lie a little outside [0, 1])."""
        return float(self.model([self._x(curve)])[0])


def _squash(v: float) -> float:
    return math.copysign(math.log1p(abs(v)), v)


def _mean(v: list[float]) -> float:
    return sum(v) / len(v)


def _sd(v: list[float]) -> float:
    m = _mean(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / len(v))
    return sd if sd > 1e-8 else 1.0


def early_curve(trial: optuna.trial.FrozenTrial, observe: int) -> list[float]:
    """The reported values at steps <= observe, in step order (non-finite ones left out)."""
    return [v for s, v in sorted(trial.intermediate_values.items()) if s <= observe and math.isfinite(v)]


class PredictorPruner(optuna.pruners.BasePruner):
    def __init__(self, observe: int, keep: float, warmup: int, hidden: int, seed: int = 0):
        self.observe, self.keep, self.warmup = int(observe), float(keep), int(warmup)
        self.hidden, self.seed = int(hidden), int(seed)
        self._cached: tuple[tuple[int, ...], CurvePredictor] | None = None

    def finished(self, study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
        """The candidates that ran to the end with a finite objective and a curve past `observe`."""
        out = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            steps = [s for s, v in t.intermediate_values.items() if math.isfinite(v)]
            if t.value is not None and math.isfinite(t.value) and steps and max(steps) >= self.observe:
                out.append(t)
        return out

    def predictor(self, finished: list[optuna.trial.FrozenTrial], minimize: bool) -> CurvePredictor:
        numbers = tuple(t.number for t in finished)
        if self._cached is None or self._cached[0] != numbers:
            model = CurvePredictor(self.hidden, self.seed).fit([early_curve(t, self.observe) for t in finished],
                                                                positions([float(t.value) for t in finished], minimize))
            self._cached = (numbers, model)
        return self._cached[1]

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.observe:
            return False
        finished = self.finished(study)
        if len(finished) < self.warmup:
            return False
        curve = early_curve(trial, self.observe)
        if not curve:
            return False
        minimize = study.direction == optuna.study.StudyDirection.MINIMIZE
        position = self.predictor(finished, minimize).predict(curve)
        finals = [float(t.value) for t in finished]
        if PREDICTED not in trial.system_attrs:
            study._storage.set_trial_system_attr(trial._trial_id, PREDICTED, value_at(position, finals, minimize))
        return outside_best(position, len(finals), self.keep)


def positions(finals: list[float], minimize: bool) -> list[float]:
    """Each value's rank position among `finals`: 0 the best, 1 the worst (ties share their mean)."""
    if len(finals) == 1:
        return [0.0]
    keys = [v if minimize else -v for v in finals]
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    rank = [0.0] * len(keys)
    i = 0
    while i < len(order):  # a run of ties shares the mean of its ranks
        j = i
        while j + 1 < len(order) and keys[order[j + 1]] == keys[order[i]]:
            j += 1
        for k in range(i, j + 1):
            rank[order[k]] = (i + j) / 2
        i = j + 1
    return [r / (len(keys) - 1) for r in rank]


def outside_best(position: float, n: int, keep: float) -> bool:
    """Whether a predicted rank position lies beyond the last of the best `keep` share of n finished."""
    if keep >= 1.0:
        return False
    last = max(0, math.ceil(keep * n) - 1)  # the rank (0-based) of the last candidate inside the best share
    return position > last / max(1, n - 1)


def value_at(position: float, finals: list[float], minimize: bool) -> float:
    """The objective at a rank position: linear between the sorted finished objectives (clamped)."""
    ranked = sorted(finals) if minimize else sorted(finals, reverse=True)
    x = min(max(position, 0.0), 1.0) * (len(ranked) - 1)
    i = min(int(x), len(ranked) - 2) if len(ranked) > 1 else 0
    if len(ranked) == 1:
        return ranked[0]
    return ranked[i] + (x - i) * (ranked[i + 1] - ranked[i])


def prediction_ranks(study: optuna.Study) -> dict[str, Any]:
    """How the predictions made at `observe` rank the candidates that then ran to the end: Spearman's
    and Kendall's correlation of predicted and actual objectives (scipy), and how many there were."""
    from scipy import stats

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pairs = [(t.system_attrs[PREDICTED], t.value) for t in complete
             if PREDICTED in t.system_attrs and t.value is not None and math.isfinite(t.value)]
    if len(pairs) < 3:
        return {"n": len(pairs), "spearman": None, "kendall": None}
    predicted, actual = zip(*pairs)
    return {"n": len(pairs), "spearman": float(stats.spearmanr(predicted, actual).statistic),
            "kendall": float(stats.kendalltau(predicted, actual).statistic)}
