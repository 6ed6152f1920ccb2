"""`petri(...)`: the multi-round loop of the Synthetic Petri Dish (Rawal et al. 2020) as a search strategy.

The searched params are a sigmoid motif's slope and offset. Generation 0 is `initial` random motifs,
trained for real by the search (their fitnesses are the ground truth). After each tell, a dish
(expc.runtime.meta.petri) is meta-trained from scratch on every motif told so far, `screen` random
motifs are scored in it (one batched inner loop), and the `top` best-scored are the next generation.

The dish is retrained inside tell(), which the search driver replays on resume, so it must be a
function of the seed and what was told: it runs on the CPU, single-threaded, from seeded points and
weights, and the screened motifs come from the strategy's own generator. meta_train (runtime/meta/
loop.py) needs a node's ctx, which a strategy has not: the outer loop here is its plain core.
"""

from __future__ import annotations

import math
import random
from typing import Any

from expc.runtime.api import OpError
from expc.runtime.search.genes import Genes
from expc.runtime.search.strategy import Strategy, Told


class Petri(Strategy):
    def __init__(self, cfg, space):
        self.cfg = cfg
        self.genes = Genes(space)
        self.rng = random.Random(int(cfg.seed))
        self.asked: list[dict[str, Any]] = []
        self.truth: list[tuple[dict[str, Any], float]] = []  # every finished motif with its fitness
        self.evaluated: list[tuple[dict[str, Any], float | None]] = []
        self.next: list[dict[str, Any]] | None = None
        self.stats: dict[str, Any] = {}

    def ask(self) -> list[dict[str, Any]]:
        if self.next is None:  # generation 0, or a dish could not be trained yet
            n = int(self.cfg.initial) if not self.evaluated else int(self.cfg.top)
            self.next = [self.genes.initial(self.rng, default=False) for _ in range(n)]
        self.asked, self.next = self.next, None
        return [dict(b) for b in self.asked]

    def tell(self, results: list[Told]) -> None:
        if len(results) != len(self.asked):
            raise ValueError(f"told {len(results)} results for {len(self.asked)} candidates")
        for b, r in zip(self.asked, results):
            f = r.fitness if r.fitness is not None and math.isfinite(r.fitness) else None
            self.evaluated.append((b, f))
            if f is not None:
                self.truth.append((b, f))
        if len({f for _, f in self.truth}) < 2:  # no ranking to learn from: random motifs again
            self.stats = {"ground_truth": len(self.truth), "dish_spearman": None}
            return
        self.next, self.stats = self._screen()

    def _screen(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        import torch
        from scipy.stats import spearmanr

        cfg = self.cfg
        candidates = [self.genes.initial(self.rng, default=False) for _ in range(int(cfg.screen))]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a few hundred parameters; and one thread keeps the sums' order fixed
        try:
            dish, loss = train_dish(self._dish_config(), [cfg.motif(b) for b, _ in self.truth],
                                    [f for _, f in self.truth], cfg.optimizer(), int(cfg.outer_steps))
            on_truth = dish.scores([cfg.motif(b) for b, _ in self.truth]).detach().tolist()
            scores = dish.scores([cfg.motif(b) for b in candidates]).detach().tolist()
        finally:
            torch.set_num_threads(threads)
        # a motif whose dish diverged (a non-finite score) is never picked
        order = sorted(range(len(candidates)), key=lambda i: (scores[i] if math.isfinite(scores[i]) else math.inf, i))
        picks = [candidates[i] for i in order[: int(cfg.top)]]
        rho = spearmanr([-s for s in on_truth], [f for _, f in self.truth]).statistic
        stats = {"ground_truth": len(self.truth), "dish_meta_loss": loss,
                 "dish_spearman": float(rho) if math.isfinite(rho) else None,
                 "pick_scores": [scores[i] for i in order[: int(cfg.top)]]}
        return picks, stats

    def _dish_config(self) -> dict[str, Any]:
        c = self.cfg
        return {"inputs": c.inputs, "hidden": c.hidden, "points": c.points, "inner_steps": c.inner_steps,
                "inner_lr": c.inner_lr, "inner_momentum": c.inner_momentum, "seed": int(c.seed)}

    def generation_stats(self) -> dict[str, Any]:
        return dict(self.stats)

    def members(self) -> list[tuple[dict[str, Any], float | None]]:
        """Every motif evaluated so far: the driver's per-generation best is the best found yet."""
        return list(self.evaluated)


def train_dish(config: dict[str, Any], motifs: list[dict], quality: list[float], optimizer, steps: int):
    """A dish meta-trained from its seeded start for `steps` outer steps on the motifs' qualities
    (higher is better), as run_petri_dish does; returns (dish, mean meta-loss of the last 10 steps)."""
    import torch

    from expc.runtime.meta.petri import Dish, ranking_loss
    from expc.runtime.train.optim import build_optimizer, peak_lr, with_lr

    dish = Dish(config)
    opt = build_optimizer(with_lr(optimizer, peak_lr(optimizer)), dish.parameters())
    q = torch.tensor(quality)
    last: list[float] = []
    for _ in range(steps):
        loss = ranking_loss(dish.scores(motifs, differentiable=True), q)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        last = (last + [float(loss.detach())])[-10:]
        if not math.isfinite(last[-1]):
            raise OpError(f"petri: the dish's meta-loss is {last[-1]} at outer step {len(last)}", field="strategy",
                          hint="lower the outer or inner learning rate, or take fewer inner steps")
    return dish, sum(last) / len(last) if last else float("nan")
