"""Evaluation protocols (kind `eval`): a metric replicated over seeds, and the paired comparison of two
replicates.

    param seed = 0
    train clf = fit(cnn(), d.train, optimizer = sgd(lr = 0.1), steps = 300, seed = seed)
    eval acc = accuracy(clf, d.test)
    eval acc5 = replicate(acc, seeds = 5, param = seed)
    eval gain = compare(acc5, replicate(accuracy(clf_fop, d.test), seeds = 5, param = seed))

`replicate` evaluates its metric's whole upstream subgraph once per seed 0..n-1: each replicate binds
the experiment seed ("experiment.seed", which enters every key below it, so each seed's nodes are
cached apart and `ctx.seed` is that seed when they run) and, with `param = NAME`, that param too, for
operators that take their seed as an argument. The replicates go through `ctx.map`, like a search's
trials: here, in local worker processes or as Ray tasks. `compare(a, b)` is the difference b - a per
seed, with its t-interval. The statistics are in expc.runtime.report.stats (scipy, imported only when
a replicate or a comparison is computed).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import Field, field_validator

from expc.runtime.registry import Deferred, Evaluates, Input, Params, op
from expc.runtime.types import value_type

SEED = "experiment.seed"  # the binding that replaces the experiment seed (see interpreter/planner.py)


# --------------------------------------------------------------------------------------------- printing


def _fmt(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}"


def _decimals(spread: float, digits: int) -> int:
    """Decimals that show `spread` with two significant digits when its first three are below 355 and
    one otherwise (the Particle Data Group's rule: 0.008, 0.023, 0.15); the mean is printed to the
    same place. A spread of 0 or none: `digits` significant digits."""
    if not _number(spread) or spread <= 0:
        return max(0, digits - 1)
    exp = math.floor(math.log10(spread))
    lead3 = int(round(spread / 10 ** (exp - 2)))
    return max(0, min(-exp + (1 if lead3 < 355 else 0), 12))


def plus_minus(v: dict, digits: int = 4) -> str | None:
    """A replicate as a table cell: `0.912 ± 0.008 (n=5)`, ± one standard deviation over the seeds;
    a comparison: `+0.012 [-0.003, +0.027] (n=5)`, the mean paired difference and its 95% interval;
    the spread decides the decimals (see _decimals). None for anything else."""
    if not (isinstance(v, dict) and isinstance(v.get("n"), int) and "sd" in v and _number(v.get("value"))):
        return None
    mean, n = float(v["value"]), v["n"]
    if v.get("paired") and isinstance(v.get("ci"), list) and all(_number(x) for x in v["ci"]):
        lo, hi = v["ci"]
        if hi - lo <= 1e-12 * max(1.0, abs(mean)):  # every seed gave the same difference
            return f"{mean:+.{digits}g} ± 0 (n={n})"
        d = _decimals((hi - lo) / 2, digits)
        if d > digits + 2:  # a spread far below the numbers' own scale: significant digits say more
            return f"{mean:+.2g} [{lo:+.2g}, {hi:+.2g}] (n={n})"
        return f"{mean:+.{d}f} [{lo:+.{d}f}, {hi:+.{d}f}] (n={n})"
    sd = v["sd"]
    if not _number(sd):
        return f"{mean:.{digits}g} (n={n})"
    if sd == 0:
        return f"{mean:.{digits}g} ± 0 (n={n})"
    d = _decimals(sd, digits)
    return f"{_fmt(mean, d)} ± {_fmt(sd, d)} (n={n})"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _replicated_summary(v) -> str | None:
    """`0.912 ± 0.008 (n=5), 95% CI [0.902, 0.922]`; a comparison: `+0.012 [-0.003, +0.027] (n=5),
    b - a over paired seeds, p = 0.09`."""
    cell = plus_minus(v)
    if cell is None:
        return None
    if v.get("paired"):
        p = v.get("p")
        return cell + ", b - a over paired seeds" + (f", p = {p:.2g}" if _number(p) else "")
    ci = v.get("ci")
    if isinstance(ci, list) and all(_number(x) for x in ci):
        d = _decimals(v["sd"], 4) if _number(v.get("sd")) else 4
        cell += f", 95% CI [{ci[0]:.{d}f}, {ci[1]:.{d}f}]"
    return cell


REPLICATED = value_type(
    "replicated", "a metric replicated over seeds: .value is the mean; .sd, .ci (95%, t), .n, .values, .seeds",
    parent="metric", kinds={"eval"}, summary=_replicated_summary,
    members={"value": "number", "sd": "number", "ci": "list", "n": "int", "values": "list", "seeds": "list"},
)
COMPARISON = value_type(
    "comparison", "a paired difference b - a of two replicates over the same seeds: .value is its mean; "
    ".sd, .ci (95%, t), .p (paired t-test), .n, .values, .seeds",
    parent="replicated", kinds={"eval"}, summary=_replicated_summary,
    members={"value": "number", "sd": "number", "ci": "list", "n": "int", "values": "list", "seeds": "list",
             "p": "number", "a": "number", "b": "number"},
)

# -------------------------------------------------------------------------------------------- replicate


class ReplicateParams(Params):
    metric: Annotated[Any, Deferred()] = Field(
        description="the evaluation to replicate: a metric (its .value), a number, or a member of a result")
    seeds: int = Field(5, ge=2, le=10_000, description="replicates: the metric under experiment seeds 0..seeds-1")
    param: Annotated[Any, Deferred()] = Field(
        None, description="a param bound to each replicate's seed as well, for operators that take their seed as "
        "an argument: fit(..., seed = s) with param = s")
    parallel: int | None = Field(None, ge=1, le=1024, description="replicates at once: local worker processes, or "
                                 'Ray tasks with backend = "ray" (default: the experiment\'s workers)')

    @field_validator("metric")
    @classmethod
    def _metric(cls, v):
        if not (isinstance(v, dict) and "$ref" in v):
            raise ValueError(f"expected an evaluation to replicate (a node such as a metric), got {v!r}")
        return v

    @field_validator("param")
    @classmethod
    def _param(cls, v):
        if v is not None and not (isinstance(v, dict) and "$param" in v):
            raise ValueError(f"expected a param (param = s, declared `param s = 0`), got {v!r}")
        return v


@op("replicate", params=ReplicateParams, kinds={"eval"}, returns="replicated", version=1,
    evaluates=Evaluates(over="param"))
def replicate(p: ReplicateParams, ctx) -> dict:
    """The metric's whole upstream subgraph evaluated under experiment seeds 0..seeds-1 (each seed's
    nodes cached apart): `value` is the mean, with `sd`, the 95% t-interval `ci`, `n`, and per seed
    `values` and `seeds`. Reports print it as `mean ± sd (n=...)`."""
    from expc.runtime.api import OpError
    from expc.runtime.report.stats import summarize
    from expc.runtime.search.trial import number_of

    ref = p.metric
    node, path = ref["$ref"], tuple(ref.get("path", []))
    name = p.param["$param"] if p.param is not None else None
    if name is not None and name in ctx.bindings:
        ctx.warn(f"param '{name}' is set on the command line; each replicate binds it to its seed", field="param")
    seeds = list(range(p.seeds))
    bindings = [{SEED: s, **({name: s} if name is not None else {})} for s in seeds]
    results = ctx.map(node, bindings, parallel=p.parallel)  # a failed replicate fails with its node's diagnostic
    values = [number_of(r.get(), node, path, "metric", "replicated metric") for r in results]
    for s, v in zip(seeds, values):
        ctx.log("replicate", v, step=s)
    out = summarize(values)
    if not all(math.isfinite(v) for v in values):
        ctx.warn(f"{sum(not math.isfinite(v) for v in values)} of {len(values)} replicates are not finite",
                 field="metric")
    elif len(set(values)) == 1:
        hint = "" if name is not None else (": an operator that takes its seed as an argument (fit(..., seed = s)) "
                                            "varies with `param = s`")
        ctx.warn(f"the {len(values)} replicates of '{node}' gave the same value ({values[0]:.6g}): nothing upstream "
                 f"draws from the seed{hint}", field="metric")
    if out is None:
        raise OpError("no replicate gave a value", field="metric")
    return {**out, "seeds": seeds, "metric": ".".join([node, *map(str, path)]),
            **({"param": name} if name is not None else {})}


# ---------------------------------------------------------------------------------------------- compare


class CompareParams(Params):
    a: Input["replicated"] = Field(description="the baseline: replicate(...)")
    b: Input["replicated"] = Field(description="the treatment: replicate(...) over the same seeds")


@op("compare", params=CompareParams, kinds={"eval"}, returns="comparison", version=1)
def compare(p: CompareParams, ctx) -> dict:
    """The paired difference b - a, seed by seed (both replicates over the same seeds): `value` is its
    mean, with `sd`, the 95% t-interval `ci`, the two-sided paired t-test `p`, `n`, the per-seed
    differences `values`, and the two means `a` and `b`."""
    from expc.runtime.api import OpError
    from expc.runtime.report.stats import paired

    a, b = p.a, p.b
    for field, v in (("a", a), ("b", b)):
        if not (isinstance(v, dict) and isinstance(v.get("values"), list) and isinstance(v.get("seeds"), list)):
            raise OpError("expected a replicate (replicate(METRIC, seeds = n)), with its per-seed values", field=field)
    if a["seeds"] != b["seeds"]:
        raise OpError(f"compare pairs replicates seed by seed, but a has seeds {_seeds(a['seeds'])} and b "
                      f"{_seeds(b['seeds'])}", field="b", hint="give both replicates the same `seeds`")
    if a.get("param") != b.get("param"):
        ctx.warn(f"a binds param {a.get('param')!r} to the seed and b {b.get('param')!r}: are the seeds paired?",
                 field="b")
    out = paired(a["values"], b["values"])
    return {**out, "seeds": list(a["seeds"]), "a_metric": a.get("metric"), "b_metric": b.get("metric")}


def _seeds(seeds: list) -> str:
    return f"{seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[0] + len(seeds))) else str(seeds)
