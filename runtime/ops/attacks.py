"""Adversarial attacks (`attack`, inline) and their evaluation (kind `eval`): `fgsm(...)`, `pgd(...)`,
`square(...)` and `autoattack(...)` are values; `attack_success` runs one against a classifier, and
`fit(..., adversarial = pgd(...))` trains against one.

    eval asr = attack_success(clf, d.test, attack = pgd(eps = 0.15, steps = 10))
    eval t_cal = calibrate(hot, d.train)
    eval asr_t = attack_success(hot, d.test, attack = pgd(eps = 0.15), temperature = t_cal)

`eps` (and `pgd`'s `step`) are fractions of the data's feature range [lo, hi]: eps = 0.1 on digits()
(pixels in [0, 16]) moves a pixel by at most 1.6, on digits(normalize = true) by 0.1, so the same eps
means the same attack on both; an eps above 1 would leave the range and is an E401 at check time.
`temperature` is the attacker's: the attack sees logits / temperature (the model is unchanged), a
number or a metric such as `calibrate(...)`'s. The attacks are torchattacks' (imported when one
runs, by expc.runtime.attacks), except pgd's margin loss and restarts, which it lacks."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type

ATTACK = value_type("attack", "an adversarial attack: fgsm(...), pgd(...), square(...), autoattack(...)", node=False)

ATTACKS = ("fgsm", "pgd", "square", "autoattack")
EPS = "L-inf budget, a fraction of the data's feature range [lo, hi] (digits(): 0.1 is 1.6 pixel levels)"


class AttackParams(Params):
    """What every attack has: an L-inf budget in units of the data's range."""

    name: ClassVar[str] = "?"
    eps: float = Field(gt=0, le=1, description=EPS)

    @field_validator("eps", mode="before")
    @classmethod
    def _in_range(cls, v):
        # before pydantic's own `le` check, to say why 1 is the limit
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 1:
            raise PydanticCustomError("eps", "eps is a fraction of the data's feature range [lo, hi]: at most 1, "
                                      "the whole range")
        return v

    def describe(self) -> str:
        """`pgd(eps=0.15, steps=10)`: the attack in one line (details of results, config.json)."""
        fields = type(self).model_fields
        args = [f"{k}={getattr(self, k):g}" if isinstance(getattr(self, k), float) else f"{k}={getattr(self, k)}"
                for k in fields if k == "eps" or getattr(self, k) != fields[k].default]
        return f"{self.name}({', '.join(args)})"


class FgsmParams(AttackParams):
    name: ClassVar[str] = "fgsm"


@op("fgsm", params=FgsmParams, returns="attack", inline=True)
def fgsm(p: FgsmParams, ctx=None) -> FgsmParams:
    """The fast gradient sign method (Goodfellow et al. 2015): one step of size eps along the sign of
    the cross-entropy's input gradient (torchattacks.FGSM)."""
    return p


class PgdParams(AttackParams):
    name: ClassVar[str] = "pgd"
    steps: int = Field(20, ge=1, le=100_000, description="gradient steps per restart")
    step: float | None = Field(None, gt=0, le=1,
                               description="step size, in the units of eps (default 2.5 * eps / steps)")
    restarts: int = Field(1, ge=1, le=1000,
                          description="random restarts: an input counts as fooled if any restart fools it")
    random_start: bool = Field(True, description="start each restart at a uniform point of the eps-ball")
    loss: Literal["ce", "margin"] = Field(
        "ce", description='"ce": cross-entropy of the (attacker-scaled) logits; "margin": the largest other logit '
        "minus the true one (no softmax, so no saturation)")

    @model_validator(mode="after")
    def _restarts(self):
        if self.restarts > 1 and not self.random_start:
            raise PydanticCustomError("restarts", "restarts > 1 needs random_start = true (without it every restart "
                                      "is the same)")
        return self

    @property
    def step_size(self) -> float:
        return self.step if self.step is not None else 2.5 * self.eps / self.steps


@op("pgd", params=PgdParams, returns="attack", inline=True)
def pgd(p: PgdParams, ctx=None) -> PgdParams:
    """Projected gradient descent (Madry et al. 2018): signed gradient steps projected back onto the
    eps-ball, from a random start (torchattacks.PGD; the margin loss and the restarts are expc's)."""
    return p


class SquareParams(AttackParams):
    name: ClassVar[str] = "square"
    queries: int = Field(ge=1, le=1_000_000, description="queries of the model's scores per input")
    loss: Literal["ce", "margin"] = Field(
        "ce", description='"ce": the cross-entropy of the (attacker-scaled) logits; "margin": the true logit minus '
        "the largest other one")


@op("square", params=SquareParams, returns="attack", inline=True)
def square(p: SquareParams, ctx=None) -> SquareParams:
    """The Square attack (Andriushchenko et al. 2020): score-based random search over square patches,
    no gradients (torchattacks.Square, L-inf). Images only."""
    return p


class AutoAttackParams(AttackParams):
    name: ClassVar[str] = "autoattack"
    version: Literal["standard", "plus", "rand"] = Field(
        "standard", description='"standard": APGD-CE, APGD-T, FAB-T, Square; "plus": also APGD-DLR and FAB, with '
        'restarts; "rand": APGD-CE and APGD-DLR with EOT')


@op("autoattack", params=AutoAttackParams, returns="attack", inline=True)
def autoattack(p: AutoAttackParams, ctx=None) -> AutoAttackParams:
    """AutoAttack (Croce & Hein 2020), L-inf, seeded: a parameter-free ensemble (torchattacks.AutoAttack).
    Images with at least 4 classes (its targeted DLR loss needs them)."""
    return p


def check_attack(v):
    """An attack value (JSON form) must be one of the attacks: its type says so, its name is checked."""
    if isinstance(v, dict) and "$op" in v and v.get("$op") not in ATTACKS:
        known = ", ".join(a + "(...)" for a in ATTACKS)
        raise ValueError(f"expected an attack ({known}), got {v.get('$op')}(...)")
    return v


def check_temperature(v):
    """A positive number, or a node's result (a metric) checked when it is known."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not (math.isfinite(v) and v > 0):
        raise PydanticCustomError("temperature", "the temperature must be a positive number")
    return v


class AttackSuccessParams(Params):
    model: Input["classifier"] = Field(description="a classifier (fit, or a merge of classifiers)")
    data: Input["tensors"] = Field(description="labelled examples to attack")
    attack: Input["attack"] = Field(description="fgsm(...), pgd(...), square(...) or autoattack(...)")
    temperature: Input["number", "metric"] = Field(
        1.0, description="the attacker's temperature: the attack sees logits / temperature (a number, or a metric "
        "such as calibrate(...)'s)")
    n: int | None = Field(None, ge=1, description="attack the first n examples (default: all)")
    batch: int = Field(512, ge=1, description="examples attacked at once")
    seed: int = Field(0, description="random starts and random search")
    diagnose: bool = Field(True, description="compute the IOR diagnostics (zero_grad_share, flat_share): one "
                           "input-gradient pass per batch; false leaves them out (none) and skips it")

    @field_validator("attack")
    @classmethod
    def _attack(cls, v):
        return check_attack(v)

    @field_validator("temperature")
    @classmethod
    def _temperature(cls, v):
        return check_temperature(v)


@op("attack_success", params=AttackSuccessParams, kinds={"eval"}, returns="metric", version=1)
def attack_success(p: AttackSuccessParams, ctx) -> dict:
    """Attack success rate (value): the share of correctly classified examples whose prediction the
    attack changes (misclassified ones do not count). Also the robust and clean accuracies, and the
    IOR diagnostics among the correct examples: the share whose cross-entropy input gradient of
    logits / temperature is exactly zero in float32 (gradient attacks see nothing) and the share whose
    class probabilities are exactly equal (score-based attacks on probabilities see nothing)."""
    from expc.runtime.attacks.success import run_attack_success

    return run_attack_success(p, ctx)
