"""Evaluating classifiers (kind `eval`): `accuracy`, `calibration` (ECE, NLL, confidence), `calibrate` (the
temperature that minimizes the NLL) and `n_params` (any model). Each returns a metric: `value` and
details.

    eval acc = accuracy(clf, d.test)
    eval ece = calibration(clf, d.test, bins = 15)
    eval t = calibrate(clf, d.train)

`model` takes any model: merges of classifiers (`where(...)`, `ties(...)`) are typed `model`, and a
model that is not a classifier is reported when the node runs. The arithmetic is in
expc.runtime.nets.metrics (torch, imported only when a metric is computed)."""

from __future__ import annotations

from pydantic import Field

from expc.runtime.registry import Input, Params, op


class ClassifyParams(Params):
    model: Input["classifier"] = Field(description="a classifier (fit, or a merge of classifiers)")
    data: Input["tensors"] = Field(description="labelled examples")
    batch: int = Field(1024, ge=1, description="examples per forward pass")


def _logits(p, ctx):
    """(float64 logits, int64 labels, classes) of the model on the data."""
    import torch

    from expc.runtime.api import OpError
    from expc.runtime.nets.load import load_classifier
    from expc.runtime.nets.metrics import logits_of
    from expc.runtime.train.fit import threads_for

    net, config = load_classifier(p.model, ctx.device)
    threads_for(net, ctx.workers)
    if list(p.data.shape) != list(config["input_shape"]):
        raise OpError(f"the classifier takes examples of shape {config['input_shape']}, the data has "
                      f"{list(p.data.shape)}", field="data")
    X, y = p.data.load()
    classes = int(config["classes"])
    if len(y) and int(y.max()) >= classes:
        raise OpError(f"label {int(y.max())} is not a class of the classifier ({classes} classes)", field="data")
    return logits_of(net, torch.from_numpy(X), ctx.device, p.batch), torch.from_numpy(y), classes


@op("accuracy", params=ClassifyParams, kinds={"eval"}, returns="metric", version=1)
def accuracy(p: ClassifyParams, ctx) -> dict:
    """The fraction of examples whose largest logit is their label; also per-class accuracies."""
    from expc.runtime.nets.metrics import accuracy as measure

    logits, y, classes = _logits(p, ctx)
    return measure(logits, y, classes)


class CalibrationParams(ClassifyParams):
    bins: int = Field(15, ge=1, le=10_000, description="equal-width confidence bins")


@op("calibration", params=CalibrationParams, kinds={"eval"}, returns="metric", version=1)
def calibration(p: CalibrationParams, ctx) -> dict:
    """Expected calibration error (value) over equal-width confidence bins; also the maximum
    calibration error, the NLL, the mean confidence, the accuracy and the per-bin reliability."""
    from expc.runtime.nets.metrics import calibration as measure

    logits, y, _ = _logits(p, ctx)
    return measure(logits, y, p.bins)


@op("calibrate", params=ClassifyParams, kinds={"eval"}, returns="metric", version=1)
def calibrate(p: ClassifyParams, ctx) -> dict:
    """Temperature scaling: the T in [1e-4, 1e4] that minimizes the NLL of softmax(logits / T) on the
    data (value = T); also the NLL and ECE (15 bins) before and after."""
    from expc.runtime.nets.metrics import best_temperature, calibration, nll

    logits, y, _ = _logits(p, ctx)
    t, at_bound = best_temperature(logits, y)
    if at_bound:
        ctx.warn(f"the best temperature is at the end of the searched range: T = {t:g}", field="data")
    return {"value": t, "temperature": t, "nll_before": nll(logits, y), "nll_after": nll(logits, y, 1.0 / t),
            "ece_before": calibration(logits, y, 15)["ece"], "ece_after": calibration(logits / t, y, 15)["ece"]}


class NParamsParams(Params):
    model: Input["model", "continual"] = Field(description="any model, or a continual run")


@op("n_params", params=NParamsParams, kinds={"eval"}, returns="metric", version=1)
def n_params(p: NParamsParams, ctx=None) -> dict:
    """The number of parameters (value), read from the safetensors headers; also the number of
    tensors and of head.* parameters. Of a continual run: the parameters it must keep (backbone,
    adapters and heads), with each part."""
    from pathlib import Path

    if isinstance(p.model, dict) and "n_params" in p.model:  # a continual run (runtime/ops/continual.py)
        return dict(p.model["n_params"])

    from expc.runtime.merge.modeldir import load_operand

    operand = load_operand(Path(p.model.path), "model")
    n = sum(t.numel for t in operand.tensors)
    head = sum(t.numel for t in operand.tensors if t.name.startswith("head."))
    return {"value": n, "tensors": len(operand.tensors), "head": head}
