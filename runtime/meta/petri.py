"""The Synthetic Petri Dish (Rawal et al. 2020) behind `petri_dish` and `petri_score` (runtime/ops/petri.py).

A dish is a tiny network (`inputs` -> `hidden` units with the motif as activation -> 1 output) with
fixed initial weights, trained for `inner_steps` steps of SGD on `points` synthetic training points
and scored by its squared error on `points` synthetic validation points: lower is a better motif.
The four point sets (inputs and targets of both) are meta-learned, through the unrolled training
(expc.runtime.meta.inner), so that the dishes' scores order the ground-truth motifs as their real
performance does: a pairwise logistic ranking loss over every pair of ground-truth motifs.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from expc.runtime.api import OpError, node_seed
from expc.runtime.meta.inner import forward, unroll
from expc.runtime.meta.loop import meta_train
from expc.runtime.nets.modeldir_io import load_weights, read_tagged, save_module

FORMAT = 1


class DishNet(nn.Module):
    """inputs -> hidden (the motif) -> one output, for M motifs at once: every weight has a leading
    motif dimension, so M dishes train in one unrolled loop (the loss is their sum, and each dish's
    gradient is that of its own loss). The motifs' slopes and offsets are set with `with_motifs`."""

    def __init__(self, inputs: int, hidden: int, motifs: int = 1):
        super().__init__()
        one_fc1, one_fc2 = nn.Linear(inputs, hidden), nn.Linear(hidden, 1)  # torch's initialization
        self.fc1_weight = nn.Parameter(one_fc1.weight.detach().expand(motifs, -1, -1).clone())
        self.fc1_bias = nn.Parameter(one_fc1.bias.detach().expand(motifs, -1).clone())
        self.fc2_weight = nn.Parameter(one_fc2.weight.detach()[0].expand(motifs, -1).clone())
        self.fc2_bias = nn.Parameter(one_fc2.bias.detach().expand(motifs).clone())
        self.slope = self.offset = None

    def with_motifs(self, specs: list[dict], device) -> "DishNet":
        for spec in specs:
            if not (isinstance(spec, dict) and spec.get("kind") == "sigmoid"):
                raise OpError(f"a dish scores sigmoid(slope, offset) motifs, not {spec!r}", field="motif")
        self.slope = torch.tensor([float(m["slope"]) for m in specs], device=device)[:, None, None]
        self.offset = torch.tensor([float(m["offset"]) for m in specs], device=device)[:, None, None]
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [points, inputs] -> outputs [motifs, points]."""
        z = torch.einsum("mhi,pi->mph", self.fc1_weight, x) + self.fc1_bias[:, None, :]
        a = torch.sigmoid(self.slope * (z - self.offset))  # expc.runtime.nets.build.sloped_sigmoid, batched
        return torch.einsum("mh,mph->mp", self.fc2_weight, a) + self.fc2_bias[:, None]


def _per_dish(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out - y[None, :]).square().mean(1)


def _summed(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return _per_dish(out, y).sum()


class Dish(nn.Module):
    """What a dish keeps: the synthetic points (meta-learned) and the fixed initial weights (buffers)."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = config
        n, i, h = config["points"], config["inputs"], config["hidden"]
        gen = torch.Generator().manual_seed(config["seed"])
        self.train_x = nn.Parameter(torch.randn(n, i, generator=gen))
        self.train_y = nn.Parameter(torch.randn(n, generator=gen))
        self.val_x = nn.Parameter(torch.randn(n, i, generator=gen))
        self.val_y = nn.Parameter(torch.randn(n, generator=gen))
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(config["seed"])  # the CPU generator only
            net = DishNet(i, h)
        for name, p in net.named_parameters():
            self.register_buffer("init_" + name, p.detach()[0].clone())

    def scores(self, motifs: list[dict], differentiable: bool = False) -> torch.Tensor:
        """Each motif's validation error after training in the dish (lower: a better motif), [motifs]."""
        c = self.config
        device = self.train_x.device
        net = DishNet(c["inputs"], c["hidden"], len(motifs)).to(device).with_motifs(motifs, device)
        params = {name: getattr(self, "init_" + name).expand(len(motifs), *getattr(self, "init_" + name).shape)
                  .clone().requires_grad_(True) for name, _ in net.named_parameters()}
        with torch.enable_grad():  # the inner steps take gradients even when the caller does not
            final = unroll(net, params, lambda t: (self.train_x, self.train_y), _summed, c["inner_steps"],
                           c["inner_lr"], c["inner_momentum"], differentiable=differentiable)
            return _per_dish(forward(net, final, self.val_x), self.val_y)


def ranking_loss(scores: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Mean pairwise logistic loss that a better motif (higher quality) has the lower score; the
    scores are compared in units of their spread, so the loss does not reward inflating them."""
    diff = (scores[:, None] - scores[None, :]) / (scores.detach().std() + 1e-8)
    better = (quality[:, None] > quality[None, :]).to(scores.dtype)
    return (F.softplus(diff) * better).sum() / better.sum().clamp_min(1)


def bind(motif: dict, params: dict, field: str = "motif") -> dict:
    """The activation spec of a symbolic motif ({"$op": "sigmoid", "slope": {"$param": "s"}, ...}) with
    a trial's params bound."""
    from expc.runtime.ops.activations import PARAMETRIC

    name = motif.get("$op") if isinstance(motif, dict) else None
    if name not in PARAMETRIC:
        raise OpError(f"the motif must be an activation value ({', '.join(k + '(...)' for k in PARAMETRIC)}), "
                      f"got {name or motif!r}", field=field)
    fields = {}
    for k, v in motif.items():
        if k == "$op":
            continue
        if isinstance(v, dict) and "$param" in v:
            if v["$param"] not in params:
                raise OpError(f"the motif's '{k}' is param '{v['$param']}', which the ground-truth search does not "
                              f"search (it searches {', '.join(sorted(params)) or 'nothing'})", field=field)
            v = params[v["$param"]]
        elif isinstance(v, dict):
            raise OpError(f"the motif's '{k}' must be a number or a searched param", field=f"{field}.{k}")
        fields[k] = v
    try:
        return PARAMETRIC[name].model_validate(fields).spec()
    except ValueError as e:
        raise OpError(f"the motif {name}({fields}) is invalid: {e}", field=field) from None


def ground_truth(search: dict, by: str | None, better: str) -> tuple[list[dict], list[float]]:
    """(params, quality) of each finished trial of a search result, quality oriented so higher is better."""
    trials = [t for t in search.get("trials", []) if t.get("state") == "complete"]
    if by is None:
        if not search.get("directions"):
            raise OpError("the ground-truth search has no objective: name the measure to rank by (by = \"acc\")",
                          field="by")
        values = [t.get("value") for t in trials]
        direction = search["directions"][0]
        higher = direction == "maximize" if better == "auto" else better == "higher"
    else:
        if by not in (search.get("measures") or []):
            raise OpError(f"the ground-truth search has no measure '{by}' (its measures: "
                          f"{', '.join(search.get('measures') or []) or 'none'})", field="by")
        if better == "auto":
            raise OpError(f"say whether a higher '{by}' is better: better = \"higher\" or \"lower\"", field="better")
        values = [(t.get("measures") or {}).get(by) for t in trials]
        higher = better == "higher"
    kept = [(t["params"], float(v)) for t, v in zip(trials, values) if v is not None and math.isfinite(float(v))]
    if len(kept) < 2:
        raise OpError(f"the ground-truth search has {len(kept)} finished trial(s) with a value: a ranking needs at "
                      "least 2", field="ground_truth")
    return [p for p, _ in kept], [v if higher else -v for _, v in kept]


def run_petri_dish(p, ctx) -> dict:
    from scipy.stats import spearmanr

    from expc.runtime.train.optim import build_optimizer, peak_lr, with_lr

    device = ctx.device
    params, quality = ground_truth(p.ground_truth, p.by, p.better)
    motifs = [bind(p.motif, trial) for trial in params]
    config = {"expc_dish": FORMAT, "inputs": p.inputs, "hidden": p.hidden, "points": p.points,
              "inner_steps": p.inner_steps, "inner_lr": p.inner_lr, "inner_momentum": p.inner_momentum,
              "seed": node_seed(p.seed, ctx.seed), "motif": p.motif}
    dish = Dish(config).to(device)
    torch.set_num_threads(1)  # a few hundred parameters: threads cost more than they save
    opt = build_optimizer(with_lr(p.outer, peak_lr(p.outer)), dish.parameters())
    q = torch.tensor(quality, device=device)

    def outer_loss(step: int) -> torch.Tensor:
        return ranking_loss(dish.scores(motifs, differentiable=True), q)

    summary = meta_train(dish, opt, p.outer_steps, outer_loss, ctx, p.checkpoint_every, "petri_dish")
    scores = dish.scores(motifs).detach().tolist()
    fit_rho = float(spearmanr([-s for s in scores], quality).statistic)
    config["ground_truth"] = [{"motif": m, "quality": v, "score": s} for m, v, s in zip(motifs, quality, scores)]
    config["meta_training"] = {"outer_steps": p.outer_steps, "final_meta_loss": summary["final_loss"],
                               "spearman_on_ground_truth": fit_rho}
    save_module(dish, config, ctx.out_dir, weights="dish.safetensors")
    return {"motifs": len(motifs), "meta_loss": summary["final_loss"], "spearman": fit_rho}


def load_dish(path: Path, device: str, field: str = "dish") -> Dish:
    config, tensors = read_tagged(path, "dish.safetensors", "dish", "expc_dish", FORMAT, field)
    dish = Dish(config)
    load_weights(dish, tensors, path, field)
    return dish.to(device)


@functools.lru_cache(maxsize=8)
def _cached(path: str, device: str) -> Dish:  # a screening search scores hundreds of motifs with one dish
    return load_dish(Path(path), device)


def run_petri_score(p, ctx) -> dict:
    from expc.runtime.ops.activations import to_json

    dish = _cached(str(p.dish.path), ctx.device)
    torch.set_num_threads(1)
    spec = to_json(p.motif)
    score = float(dish.scores([spec]).detach()[0])
    return {"value": score, "motif": spec}
