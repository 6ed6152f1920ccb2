"""The area under a training curve (kind `eval`): how fast a fit's loss came down, as one number.

    train clf = fit(cnn(), d.train, optimizer = fop(sgd(lr = 0.05)), steps = 300)
    eval speed = auc(clf)

`fit` logs its loss to the run registry as means over blocks of 10 steps; `auc` reads that curve back
(ctx.metrics, by the classifier's key) and integrates it exactly: the sum of each block's mean times
its length. `value` is that area divided by the number of steps: the mean training loss over the
run, comparable between runs of the same length (lower: the loss fell sooner or further).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from expc.runtime.registry import Input, Params, op


class AucParams(Params):
    model: Input["model"] = Field(description="a trained model whose training logged the curve (fit, finetune)")
    metric: str = Field("loss", min_length=1, description="the logged curve: loss, accuracy, val_loss, ...")


def _key_of(model) -> str | None:
    """The content key of an input model. The Context gives operators no input keys, so this reads it
    from the model's store directory, which is named after its key (objects/ab/<key>)."""
    path = getattr(model, "path", None)
    name = Path(path).name if path is not None else ""
    return name if len(name) == 40 and all(c in "0123456789abcdef" for c in name) else None


@op("auc", params=AucParams, kinds={"eval"}, returns="metric", version=1)
def auc(p: AucParams, ctx) -> dict:
    """The area under the model's logged training curve (`metric`, default loss) per step (value: the
    mean of the curve over the run); also `area` (in metric x steps), `steps`, `final` (the last
    logged value) and `points`."""
    from expc.runtime.api import OpError

    key = _key_of(p.model)
    rows = [(s, v) for _, s, v in ctx.metrics(key, p.metric) if s is not None] if key else []
    if not rows:
        raise OpError(f"auc: the run registry has no '{p.metric}' curve for this model (only a training node "
                      "such as fit logs one, and only into the store it ran in)", field="model")
    by_step = dict(rows)  # a resumed run logs some steps twice: keep the last
    steps = sorted(by_step)
    area, previous = 0.0, 0
    for s in steps:  # each logged value is the mean over the steps since the previous one
        area += by_step[s] * (s - previous)
        previous = s
    return {"value": area / steps[-1], "area": area, "steps": steps[-1], "final": by_step[steps[-1]],
            "points": len(steps), "curve": p.metric}
