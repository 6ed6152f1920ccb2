"""Statistics of replicates (scipy): the mean with its t-interval, and paired differences. Imported
only when a replicate or a comparison is computed."""

from __future__ import annotations

import math

LEVEL = 0.95


def summarize(values: list[float]) -> dict | None:
    """`value` (the mean), `sd` (n - 1 in the denominator), `sem`, `ci` (the 95% t-interval of the
    mean), `n` and `values`, over the finite values; None when there is none."""
    from scipy import stats

    finite = [float(v) for v in values if math.isfinite(v)]
    n = len(finite)
    if not n:
        return None
    mean = math.fsum(finite) / n
    out = {"value": mean, "n": n, "values": [float(v) for v in values], "ci_level": LEVEL}
    if n < 2:
        return {**out, "sd": None, "sem": None, "ci": None}
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    sem = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * sem
    return {**out, "sd": sd, "sem": sem, "ci": [mean - half, mean + half]}


def paired(a: list[float], b: list[float]) -> dict:
    """The differences b - a, summarized as above, with the two-sided paired t-test `p` (None when the
    differences do not vary) and the means of a and b; `paired` marks it for printing."""
    from scipy import stats

    diffs = [float(y) - float(x) for x, y in zip(a, b)]
    out = summarize(diffs) or {"value": math.nan, "n": 0, "values": diffs, "sd": None, "sem": None, "ci": None}
    p = None
    if out.get("sd"):
        p = float(2 * stats.t.sf(abs(out["value"]) / out["sem"], out["n"] - 1))
    return {**out, "p": p, "a": _mean(a), "b": _mean(b), "paired": True}


def _mean(values: list[float]) -> float:
    finite = [float(v) for v in values if math.isfinite(v)]
    return math.fsum(finite) / len(finite) if finite else math.nan
