"""Transferability estimates (kind `eval`): how well a trained model is expected to transfer to a labelled
target data set, from one forward pass and no training. Each returns a metric (higher: transfers
better).

    eval l = leep(backbone, target.train)
    eval r = transrate(backbone, target.train)

ADA (runtime/ops/continual.py) scores its pool's adapters with the same formulas. The formulas are in
expc.runtime.continual.transfer (numpy), the forward pass in expc.runtime.continual.bodies (torch)."""

from __future__ import annotations

from pydantic import Field

from expc.runtime.api import OpError
from expc.runtime.registry import Input, Params, op


class TransferParams(Params):
    model: Input["model"] = Field(description="the source model: a classifier (fit), or for transrate a "
                                              "transformers model reading integer features as tokens")
    data: Input["tensors"] = Field(description="the labelled target examples")
    n: int | None = Field(None, ge=2, description="use the first n examples (default: all)")


def _forward(p: TransferParams, ctx, need_head: bool):
    import torch

    from expc.runtime.continual.bodies import load_body

    body = load_body(p.model, ctx.device)
    X, y = p.data.load()
    if p.n is not None:
        X, y = X[: p.n], y[: p.n]
    X = torch.from_numpy(X).to(ctx.device)
    if body.kind == "native" and list(body.net.input_shape) != list(p.data.shape):
        raise OpError(f"the model takes examples of shape {body.net.input_shape}, the data has {list(p.data.shape)}",
                      field="data")
    if body.kind != "native":
        if need_head:
            raise OpError("leep needs a classifier: its source labels are the classes of its head", field="model")
        bad = body.check_inputs(X)
        if bad:
            raise OpError(bad, field="data")
    with torch.no_grad():
        feats = torch.cat([body.features(X[i : i + 1024]) for i in range(0, len(X), 1024)])
        logits = body.source_head(feats) if need_head else None
    return feats, logits, y


@op("leep", params=TransferParams, kinds={"eval"}, returns="metric", version=1)
def leep(p: TransferParams, ctx) -> dict:
    """LEEP (Nguyen et al. 2020): the log expected empirical prediction of the target labels through the
    source classifier's label distribution (value, <= 0); `n`, `source_classes`, `target_classes`."""
    import torch

    from expc.runtime.continual.transfer import leep as measure

    _, logits, y = _forward(p, ctx, need_head=True)
    probs = torch.softmax(logits.double(), 1).cpu().numpy()
    return {"value": measure(probs, y, p.data.classes), "n": len(y), "source_classes": probs.shape[1],
            "target_classes": p.data.classes}


class TransRateParams(TransferParams):
    eps: float = Field(1e-4, gt=0, description="the coding rate's distortion")


@op("transrate", params=TransRateParams, kinds={"eval"}, returns="metric", version=1)
def transrate(p: TransRateParams, ctx) -> dict:
    """TransRate (Huang et al. 2022): the coding rate of the model's features (what its head reads) minus
    the mean coding rate of each target class's features (value); `n`, `dims`."""
    from expc.runtime.continual.transfer import transrate as measure

    feats, _, y = _forward(p, ctx, need_head=False)
    return {"value": measure(feats.double().cpu().numpy(), y, p.eps), "n": len(y), "dims": feats.shape[1]}
