"""Evaluation (kind `eval`): held-out loss and perplexity of a causal LM on a dataset.

Both tile the packed token stream with windows of `context + 1` tokens at stride `context` (see
expc.runtime.train.tokens), so every token after the first is predicted once; deterministic, batched,
without gradients."""

from __future__ import annotations

from pydantic import Field

from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type

def _metric_summary(v) -> str | None:
    """`259.12  (nats_per_token=5.557, bits_per_byte=8.017, tokens=1,410)`: the value, then up to four
    scalar details (a detail equal to the value, as `perplexity` is in a perplexity, is left out)."""
    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def show(x) -> str:
        return f"{x:.6g}" if isinstance(x, float) else f"{x:,}" if isinstance(x, int) and abs(x) >= 10_000 else str(x)

    if not isinstance(v, dict) or not number(v.get("value")):
        return None
    details = [(k, x) for k, x in v.items()
               if k != "value" and (number(x) and x != v["value"] or isinstance(x, str) and len(x) <= 24)][:4]
    return show(v["value"]) + ("  (" + ", ".join(f"{k}={show(x)}" for k, x in details) + ")" if details else "")


METRIC = value_type("metric", "an evaluation result (member .value)", members={"value": "number"}, kinds={"eval"},
                    summary=_metric_summary)


class EvalParams(Params):
    model: Input["model"] = Field(description="the model to evaluate")
    data: Input["data"] = Field(description="held-out examples")
    context: int | None = Field(None, ge=2, description="tokens per window (default: the model's context)")
    batch: int = Field(64, ge=1, description="windows per forward pass")


def _evaluate(p: EvalParams, ctx) -> dict:
    from expc.runtime.api import OpError
    from expc.runtime.nets.rnn_lm import is_rnn_lm
    from expc.runtime.train.evaluate import metrics, stream_loss
    from expc.runtime.train.modeling import load_for_context
    from expc.runtime.train.tokens import check_stream

    if is_rnn_lm(p.model):  # a recurrent LM trained by fit(rnn_lm(...), text)
        from expc.runtime.train.rnn_fit import evaluate

        return evaluate(p, ctx)
    lm, tok, context = load_for_context(p.model, p.context, ctx)
    stream = tok.stream(p.data.examples())
    check_stream(stream, 1, f"the evaluation data ({p.data.source})")
    if int(stream.max()) >= lm.config.vocab_size:
        raise OpError(f"the data has token id {int(stream.max())} beyond the model's vocabulary", field="data")
    nats, n = stream_loss(lm, stream, context, p.batch, ctx.device, ctx.dtype)
    n_bytes = n if tok.kind == "bytes" else p.data.n_bytes + p.data.n
    return metrics(nats, n, n_bytes)


class LossParams(EvalParams):
    data: Input["data", "episodes"] = Field(description="held-out examples, or episodes (a recurrent net's)")


@op("loss", params=LossParams, kinds={"eval"}, returns="metric", version=1)
def loss(p: LossParams, ctx) -> dict:
    """Mean next-token cross-entropy (nats per token) on the data; also nats/bits per byte. On
    `episodes`: a recurrent net's mean binary cross-entropy per bit at the probe (see `error`)."""
    if getattr(p.data, "tag", None) == "episodes":
        from expc.runtime.plastic.train import error_of

        m = error_of(p.model, p.data, ctx)
        return {"value": m["loss"], **m}
    m = _evaluate(p, ctx)
    return {"value": m["nats_per_token"], **m}


@op("perplexity", params=EvalParams, kinds={"eval"}, returns="metric", version=1)
def perplexity(p: EvalParams, ctx) -> dict:
    """exp(mean next-token cross-entropy) on the data; also the loss in nats per token and per byte."""
    m = _evaluate(p, ctx)
    return {"value": m["perplexity"], **m}
