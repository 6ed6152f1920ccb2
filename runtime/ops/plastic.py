"""Recurrent and plastic network architectures (type `recurrent`, inline): `rnn(...)`, `lstm(...)` and
`plastic_rnn(...)` (Backpropamine, Miconi et al. 2019). Like `mlp(...)` they are values, not nodes:

    data train = pattern_completion(seed = 0)
    train net = fit(plastic_rnn(hidden = 32, plasticity = "neuromodulated"), train, steps = 2000)
    train agent = a2c(policy = plastic_rnn(), env = cue_reward(), episodes = 20000)

`fit` trains one on `episodes` by backpropagation through each episode; `a2c` on an environment. The
torch modules are in expc.runtime.plastic.nets (imported only when a network is built)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from expc.runtime.registry import Params, op
from expc.runtime.types import value_type
from expc.spec.diagnostics import did_you_mean

RECURRENT = value_type("recurrent", "a recurrent network architecture: rnn(...), lstm(...), plastic_rnn(...) "
                       "(what fit trains on episodes and a2c trains on an environment)",
                       node=False, kinds={"model"})

PLASTICITY = ("none", "hebbian", "neuromodulated", "retroactive")
MODULATION = ("scalar", "per_neuron")


def choice(what: str, v: Any, options: tuple[str, ...]) -> Any:
    """`v` if it is one of `options`; else an error naming them and the closest one (a plain Literal
    error would not)."""
    if not isinstance(v, str) or v in options:
        return v
    hint = did_you_mean(v, options)
    message = f"unknown {what} {v!r}" + (f": {hint}" if hint else "") + f" (one of {', '.join(options)})"
    raise PydanticCustomError(what, message.replace("{", "{{").replace("}", "}}"))


class RecurrentArch(Params):
    """Base of the recurrent architectures: `arch()` is the JSON stored in a trained net's config.json."""

    hidden: int = Field(32, ge=1, le=4096, description="recurrent units")

    def arch(self) -> dict:
        raise NotImplementedError


class RnnParams(RecurrentArch):
    def arch(self) -> dict:
        return {"kind": "rnn", "hidden": self.hidden}


@op("rnn", params=RnnParams, kinds={"model"}, returns="recurrent", inline=True)
def rnn(p: RnnParams, ctx=None) -> RnnParams:
    """An Elman recurrent net: h(t) = tanh(W_in x(t) + W h(t-1) + b), a linear read-out of h(t)."""
    return p


class LstmParams(RecurrentArch):
    def arch(self) -> dict:
        return {"kind": "lstm", "hidden": self.hidden}


@op("lstm", params=LstmParams, kinds={"model"}, returns="recurrent", inline=True)
def lstm(p: LstmParams, ctx=None) -> LstmParams:
    """A long short-term memory net (torch's LSTM cell), a linear read-out of its hidden state."""
    return p


class PlasticRnnParams(RecurrentArch):
    plasticity: Literal["none", "hebbian", "neuromodulated", "retroactive"] = Field(
        "neuromodulated", description='"none": w only; "hebbian": Hebb <- (1-eta) Hebb + eta h(t-1) h(t)^T; '
        '"neuromodulated": Hebb <- clip(Hebb + M(t) h(t-1) h(t)^T); "retroactive": Hebb <- clip(Hebb + M(t) E), '
        "E <- (1-eta) E + eta h(t-1) h(t)^T")
    modulation: Literal["scalar", "per_neuron"] = Field(
        "scalar", description="M(t) = tanh(v . h(t)) is one number, or fanned out to one per receiving neuron")
    clip: float = Field(1.0, gt=0, description="the Hebbian trace is clipped to [-clip, clip] (modulated rules)")

    @field_validator("plasticity", mode="before")
    @classmethod
    def _plasticity(cls, v):
        return choice("plasticity", v, PLASTICITY)

    @field_validator("modulation", mode="before")
    @classmethod
    def _modulation(cls, v):
        return choice("modulation", v, MODULATION)

    def arch(self) -> dict:
        return {"kind": "plastic_rnn", "hidden": self.hidden, "plasticity": self.plasticity,
                "modulation": self.modulation, "clip": self.clip}


@op("plastic_rnn", params=PlasticRnnParams, kinds={"model"}, returns="recurrent", inline=True)
def plastic_rnn(p: PlasticRnnParams, ctx=None) -> PlasticRnnParams:
    """A recurrent net whose recurrent weights are w + alpha * Hebb (Backpropamine): w and alpha are
    trained, the Hebbian trace Hebb changes within an episode at a rate M(t) that the network itself
    outputs (neuromodulation), directly or through an eligibility trace (retroactive). The trace
    starts at zero in every episode and is never stored."""
    return p


def pairing_problem(arch: str, arch_type: str, data_type: str) -> str | None:
    """Why an architecture of type `arch_type` cannot be fit to data of `data_type`, or None: fit's own
    rule (runtime/ops/fit.py TRAINS_ON, a check-time type error), asked again when fit runs, for data
    whose type the checker could not know."""
    from expc.runtime.ops.fit import TRAINS_ON

    wanted = dict(TRAINS_ON.table).get(arch_type, (None,))[0]
    if wanted is None or data_type == wanted:
        return None
    other = {"episodes": "rnn(...), lstm(...) or plastic_rnn(...)", "tensors": "mlp(...) or cnn(...)"}.get(data_type)
    return (f"{arch}(...) is a `{arch_type}` architecture, which fit trains on `{wanted}`, but the data is "
            f"`{data_type}`" + (f" (use {other} for `{data_type}`)" if other else ""))
