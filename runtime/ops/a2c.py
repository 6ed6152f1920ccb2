"""Reinforcement learning of recurrent and plastic policies (Backpropamine, Miconi et al. 2019): the
environments `cue_reward(...)` and `maze(...)` (type `env`, gymnasium environments registered by expc),
`a2c` (kind `train`, advantage actor-critic through whole episodes, a `policy`) and `returns` (its
mean episode return):

    env cues = cue_reward(cues = 4, cue_size = 8, trials = 15)
    train agent = a2c(policy = plastic_rnn(hidden = 32), env = cues, episodes = 20000)
    eval r = returns(agent, cues, episodes = 100)

The environments are in expc.runtime.plastic.envs (gymnasium), the loop in expc.runtime.plastic.a2c
(torch): both imported only when a node runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from expc.runtime.registry import Input, Params, op
from expc.runtime.types import value_type
from expc.runtime.values import ModelDir

if TYPE_CHECKING:
    from expc.runtime.poet.spec import EnvTemplate

POLICY = value_type("policy", "a recurrent policy trained by a2c (a model directory with head.* the action "
                    "logits and value.* the critic)", parent="model", kinds={"model", "train"})


def _env(env_id: str, kwargs: dict) -> EnvTemplate:
    from expc.runtime.poet.spec import EnvTemplate

    return EnvTemplate(env_id, kwargs, (), None)


class CueRewardParams(Params):
    cues: int = Field(4, ge=2, le=1000, description="cues drawn per episode, one of them rewarded")
    cue_size: int = Field(8, ge=1, le=1000, description="bits per cue (+1/-1)")
    trials: int = Field(15, ge=1, le=100_000, description="trials per episode")
    steps_per_trial: int = Field(3, ge=1, le=1000,
                                 description="steps per trial: the pair, the response, the reward, then blanks")

    @model_validator(mode="after")
    def _distinct(self):
        if self.cue_size < 20 and 2**self.cue_size < self.cues:
            raise ValueError(f"{self.cues} distinct cues need cue_size >= {(self.cues - 1).bit_length()}")
        return self


@op("cue_reward", params=CueRewardParams, kinds={"env"}, returns="env", inline=True)
def cue_reward(p: CueRewardParams, ctx=None) -> EnvTemplate:
    """Cue-reward association (Backpropamine section 4.1): each episode draws `cues` random binary cues
    and rewards one; every trial shows two of them and the agent answers 1 if the rewarded cue is in
    the pair (+1 when right, -1 when wrong). Chance gives 0 per episode; learning which cue pays
    within the episode gives up to `trials`. Observation: the pair, the last reward, a response flag
    and the last action."""
    from expc.runtime.plastic.envs import CUE_REWARD_ID

    return _env(CUE_REWARD_ID, {"cues": p.cues, "cue_size": p.cue_size, "trials": p.trials,
                                "steps_per_trial": p.steps_per_trial})


class MazeParams(Params):
    size: int = Field(9, ge=5, le=101, description="the grid's side, walls included")
    horizon: int = Field(200, ge=1, le=1_000_000, description="steps per episode")
    reward: float = Field(10.0, description="paid on reaching the reward cell (then the agent is teleported)")
    wall_penalty: float = Field(0.0, ge=0, description="subtracted when the agent walks into a wall")


@op("maze", params=MazeParams, kinds={"env"}, returns="env", inline=True)
def maze(p: MazeParams, ctx=None) -> EnvTemplate:
    """The grid maze of Backpropamine (section 4.2): walls on the border and on every (even, even)
    cell, the agent starts at the centre and sees the 3 x 3 cells around it; each visit of the
    episode's hidden reward cell pays `reward` and teleports the agent to a random cell, so a good
    agent remembers where the reward was and goes straight back."""
    from expc.runtime.plastic.envs import MAZE_ID

    return _env(MAZE_ID, {"size": p.size, "horizon": p.horizon, "reward": p.reward,
                          "wall_penalty": p.wall_penalty})


class A2cParams(Params):
    policy: Input["recurrent"] = Field(description="the net: rnn(...), lstm(...) or plastic_rnn(...)")
    env: Input["env"] = Field(description="a discrete-action environment with flat observations")
    episodes: int = Field(ge=1, le=1_000_000_000, description="training episodes in all (batch of them per update)")
    batch: int = Field(16, ge=1, le=100_000, description="episodes run in parallel per update")
    lr: float = Field(1e-3, gt=0, description="Adam's learning rate")
    gamma: float = Field(0.9, ge=0, le=1, description="discount of future rewards")
    entropy: float = Field(0.03, ge=0, description="weight of the policy's entropy bonus")
    value: float = Field(0.1, ge=0, description="weight of the critic's squared error")
    clip: float = Field(1.0, ge=0, description="gradient-norm clipping (0: off)")
    seed: int = Field(0, description="initialization, environments and action sampling")
    checkpoint_every: int = Field(50, ge=1, description="updates between resumable checkpoints")


@op("a2c", params=A2cParams, kinds={"train", "model"}, returns="policy", version=1)
def a2c(p: A2cParams, ctx) -> ModelDir:
    """Advantage actor-critic through whole episodes (as in the Backpropamine experiments): `batch`
    episodes in parallel, the net carrying its state and Hebbian traces from each episode's first
    step to its last, one Adam update per batch from the discounted returns, with an entropy bonus
    and a critic head (value.*). Logs the mean episode return; checkpoints every `checkpoint_every`
    updates, so a killed run resumes with the same result."""
    from expc.runtime.plastic.a2c import run_a2c

    return run_a2c(p, ctx)


class ReturnsParams(Params):
    policy: Input["policy"] = Field(description="a policy trained by a2c")
    env: Input["env"] = Field(description="the environment to run it in")
    episodes: int = Field(100, ge=1, le=10_000_000, description="episodes to average over")
    greedy: bool = Field(False, description="take the most probable action instead of sampling")
    seed: int = Field(0, description="environments and action sampling")


@op("returns", params=ReturnsParams, kinds={"eval"}, returns="metric", version=1)
def returns(p: ReturnsParams, ctx) -> dict:
    """The policy's mean total reward per episode (also its std and standard error), on episodes
    that a2c never trained on (another seed domain)."""
    from expc.runtime.api import node_seed
    from expc.runtime.plastic.a2c import mean_return

    return mean_return(p.policy, p.env, p.episodes, node_seed(p.seed, ctx.seed), p.greedy)
