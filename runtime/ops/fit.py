"""Training classifiers (kind `train`): `fit` trains an architecture (`mlp(...)`, `cnn(...)`), or continues
training a classifier, on a `tensors` data set, and returns a `classifier`:

    data d = split(digits(), test = 0.2)
    train clf = fit(cnn(), d.train, optimizer = adam(lr = 1e-3), epochs = 5, validation = d.test)
    train robust = fit(mlp(), d.train, epochs = 5, adversarial = pgd(eps = 0.1, steps = 7))

A classifier is a model directory (config.json with the architecture, input shape, classes and input
range; model.safetensors with `head.*` as the output layer), so the merge algebra applies to it:
`where("head.*", 1e4 * clf, clf)` multiplies every logit by 1e4. The loop is in
expc.runtime.train.fit (torch, imported only when `fit` runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from expc.runtime.ops.optim import check_optimizer
from expc.runtime.capabilities import Agrees, ReturnsBy
from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type
from expc.runtime.values import ModelDir

CLASSIFIER = value_type("classifier", "a trained classifier (fit): a model whose output layer is head.*",
                        parent="model", kinds={"model", "train", "merge"})


class FitParams(Params):
    model: Input["net", "recurrent", "rnn_lm", "classifier"] = Field(
        description="an architecture (mlp(...), cnn(...); rnn(...), lstm(...), plastic_rnn(...) for episodes; "
        "rnn_lm(...) for text) or a classifier to continue")
    data: Input["tensors", "episodes", "data"] = Field(
        description="training examples (feature arrays with labels), episodes for a recurrent net, or text for "
        "rnn_lm(...)")
    optimizer: Input["optimizer"] = Field({"$op": "adam", "lr": 1e-3}, description="sgd(...), adam(...) or fop(...)")
    epochs: int | None = Field(None, ge=1, description="passes over the data (or give steps)")
    steps: int | None = Field(None, ge=1, description="optimizer steps (or give epochs)")
    batch: int = Field(64, ge=1, description="examples per step")
    loss: Literal["ce", "mse"] = Field(
        "ce", description='"ce": cross-entropy of logits / temperature; "mse": squared error of logits / temperature '
        "against one-hot labels")
    temperature: float = Field(1.0, gt=0, description="the logits are divided by it in the loss")
    adversarial: Input["attack"] = Field(
        None, description="train on the attack's adversarial version of each batch (adversarial training, "
        "Madry et al. 2018): fgsm(...), pgd(...); the attack sees logits / temperature")
    validation: Input["tensors", "data"] = Field(None, description="held-out examples: val_loss and val_accuracy are "
                                                 "logged (a language model: val_loss on held-out text)")
    validate_every: int | None = Field(None, ge=1, description="steps between validations (default: at the end only)")
    schedule: Literal["constant", "cosine", "linear"] = Field("constant",
                                                             description="learning-rate decay after warmup")
    warmup: int = Field(0, ge=0, description="steps of linear warmup")
    clip: float = Field(0.0, ge=0, description="gradient-norm clipping (0: off)")
    seed: int = Field(0, description="initialization, data order and dropout seed")
    checkpoint_every: int = Field(500, ge=1, description="steps between resumable checkpoints")

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v):
        return check_optimizer(v)

    @model_validator(mode="after")
    def _length(self):
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give either epochs or steps" + (", not both" if self.epochs is not None else ""))
        return self


# what each kind of architecture trains on (a check-time type error otherwise, naming both types)
TRAINS_ON = Agrees(on="model", field="data", table=(
    ("net", ("tensors",)), ("classifier", ("tensors",)), ("recurrent", ("episodes",)), ("rnn_lm", ("data",))))
VALIDATES_ON = Agrees(on="model", field="validation", table=TRAINS_ON.table)


# a network for tensors is a classifier (accuracy, attacks, merges keep it); a recurrent net or a
# language model is a model (error / loss / perplexity take it)
TRAINS_A = ReturnsBy(field="model", table=(("net", "classifier"), ("classifier", "classifier")))


@op("fit", params=FitParams, kinds={"train", "model"}, returns="model", version=1,
    agrees=(TRAINS_ON, VALIDATES_ON), returns_by=TRAINS_A)
def fit(p: FitParams, ctx) -> ModelDir:
    """Train a classifier: minibatches in a seeded order, the loss of logits / temperature, the
    optimizer's steps under the schedule. Logs loss and accuracy (means over each 10 steps; with
    `validation`, val_loss and val_accuracy). Checkpoints every `checkpoint_every` steps into the
    node's work dir, so a killed run resumes with the same result; a non-finite loss names the node
    and the step, and the last good checkpoint is kept."""
    from expc.runtime.train.fit import run_fit

    return run_fit(p, ctx)
