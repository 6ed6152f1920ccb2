"""Episodic tasks (kind `data`, type `episodes`) and their metric `error`. An `episodes` value is a
seeded, endless stream of episodes: `fit` trains a recurrent net on fresh ones at every step
(backpropagation through each whole episode), `error` and `loss` evaluate on its first `n`:

    data train = pattern_completion(size = 32, patterns = 3, seed = 0)
    data test = pattern_completion(size = 32, patterns = 3, seed = 1)
    train net = fit(plastic_rnn(), train, steps = 2000)
    eval e = error(net, test)

The episodes and the training loop are in expc.runtime.plastic (numpy and torch, imported when a node
runs)."""

from __future__ import annotations

from pydantic import Field, model_validator

from expc.runtime.api import node_seed
from expc.runtime.plastic.episodes import EpisodesData
from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type


def _episodes_summary(v) -> str | None:
    if not isinstance(getattr(v, "n", None), int):
        return None
    return f"{v.task}: {v.steps} steps of {v.inputs} inputs per episode, {v.n:,} evaluation episodes"


EPISODES = value_type("episodes", "a seeded stream of episodes of a sequence task (fit trains a recurrent net "
                      "on it; error and loss evaluate on its first n)", kinds={"data"}, artifact=EpisodesData,
                      summary=_episodes_summary)


class PatternCompletionParams(Params):
    size: int = Field(32, ge=1, le=100_000, description="bits per pattern (+1/-1)")
    patterns: int = Field(3, ge=1, le=1000, description="patterns to remember per episode")
    repeats: int = Field(3, ge=1, le=1000, description="presentations of each pattern (fresh order each time)")
    show: int = Field(3, ge=1, le=1000, description="steps each presentation (and the probe) lasts")
    gap: int = Field(0, ge=0, le=1000, description="steps of zero input after each presentation")
    erase: float = Field(0.5, ge=0.0, le=1.0, description="share of the probe's bits set to zero")
    n: int = Field(1000, ge=1, le=10_000_000, description="evaluation episodes (error and loss read the first n)")
    seed: int = Field(0, description="the stream's seed (use another one for held-out episodes)")

    @model_validator(mode="after")
    def _erased(self):
        if 0 < self.erase and round(self.erase * self.size) == 0:
            raise ValueError(f"erase = {self.erase} of {self.size} bits erases no bit")
        return self


@op("pattern_completion", params=PatternCompletionParams, kinds={"data"}, returns="episodes", version=1)
def pattern_completion(p: PatternCompletionParams, ctx) -> EpisodesData:
    """Pattern completion (Miconi et al. 2018): random binary patterns shown `repeats` times each,
    then one of them with a share `erase` of its bits zeroed; the target is the full pattern, read
    from the net's output at the probe's last step. New patterns every episode: only a net that
    remembers within the episode can complete them."""
    import json

    from expc.runtime.plastic.episodes import pattern_steps

    settings = {k: getattr(p, k) for k in ("size", "patterns", "repeats", "show", "gap", "erase")}
    source = "pattern_completion(" + ", ".join(f"{k}={v}" for k, v in settings.items()) + f", seed={p.seed})"
    out = EpisodesData(path=ctx.out_dir, task="pattern_completion", settings=settings, seed=node_seed(p.seed, ctx.seed),
                       n=p.n, inputs=p.size, outputs=p.size, steps=pattern_steps(settings), source=source)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    (ctx.out_dir / "episodes.json").write_text(json.dumps(out.to_json(), indent=2, sort_keys=True) + "\n")
    return out


class ErrorParams(Params):
    model: Input["model"] = Field(description="a recurrent net trained by fit on episodes")
    data: Input["episodes"] = Field(description="the episodes to complete (their first n)")
    batch: int = Field(256, ge=1, description="episodes per forward pass")


@op("error", params=ErrorParams, kinds={"eval"}, returns="metric", version=1)
def error(p: ErrorParams, ctx) -> dict:
    """The share of wrongly completed bits: a bit is wrong when the sign of its output logit at the
    probe's last step differs from the pattern's; counted over the erased bits (with erase = 0: over
    all bits). Also error_all_bits and the loss (binary cross-entropy per bit)."""
    from expc.runtime.plastic.train import error_of

    m = error_of(p.model, p.data, ctx)
    return {"value": m["error"], **m}
