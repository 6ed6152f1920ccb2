"""Advantage actor-critic for recurrent (and plastic) policies, as in the Backpropamine experiments:
`batch` episodes run in parallel, each in its own gymnasium environment, the net carrying its state
(hidden activity, Hebbian and eligibility traces) from the episode's first step to its last; one
update per batch from the whole episodes (no truncation of backpropagation through time):

    loss = sum_t [ -log pi(a_t) (R_t - V_t)  +  value * (R_t - V_t)^2  -  entropy * H(pi_t) ] / (batch * T)

with R_t = r_t + gamma R_{t+1} the discounted return, the gradient norm clipped to `clip`, Adam.

Determinism: the environments of update u are reset with seeds drawn from (seed, u, episode) and the
actions from a torch generator seeded with (seed, u), so an update is a function of the weights and
(seed, u): a run resumed from a checkpoint ends with the weights of an uninterrupted one. No
hand-written A2C library is used because none maintained steps recurrent state through whole
episodes with plastic traces (stable-baselines3's A2C has no recurrent policies; sb3-contrib's
RecurrentPPO is PPO with LSTMs only); the loop is ~60 lines."""

from __future__ import annotations

import math

import numpy as np
import torch

from expc.runtime.api import Cancelled, OpError, node_seed
from expc.runtime.plastic import store
from expc.runtime.plastic.envs import make
from expc.runtime.plastic.nets import RecurrentNet, build
from expc.runtime.train import checkpoint
from expc.runtime.train.optim import descend

LOG_EVERY = 10
TRAIN, EVAL = 0, 1  # seed domains: evaluation episodes never repeat training ones


def env_seeds(seed: int, domain: int, index: int, count: int) -> list[int]:
    state = np.random.SeedSequence([int(seed) % 2**63, domain, int(index)]).generate_state(count, np.uint32)
    return [int(s) for s in state]


def action_generator(seed: int, domain: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(env_seeds(seed, domain + 2, index, 1)[0])


def env_config(env, field: str = "env") -> dict:
    """The JSON config of an env value (an EnvTemplate); an OpError for one with mutable parameters."""
    if getattr(env, "mutables", ()):
        raise OpError("a2c and returns need a fixed environment (mutable(...) parameters are for POET)",
                      field=field)
    return env.config({})


def spaces_of(config: dict, field: str = "env") -> tuple[int, int]:
    """(observation size, number of actions) of the environment; an OpError when A2C cannot act in it."""
    from gymnasium import spaces

    try:
        env = make(config)
    except Exception as e:  # gymnasium raises several kinds for a bad id or bad arguments
        raise OpError(f"cannot make the environment {config['id']}: {e}", field=field) from None
    obs, act = env.observation_space, env.action_space
    env.close()
    if not isinstance(act, spaces.Discrete):
        raise OpError(f"{config['id']} has actions {act}; a2c needs discrete actions", field=field)
    if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
        raise OpError(f"{config['id']} has observations {obs}; a2c needs a flat Box", field=field)
    return int(obs.shape[0]), int(act.n)


def rollout(net: RecurrentNet, envs: list, seeds: list[int], gen: torch.Generator, greedy: bool = False):
    """Run one episode in each environment. Returns per step lists of log-probabilities, values,
    entropies (tensors [B]), rewards and alive masks (float tensors [B]); gradients flow when enabled."""
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds)]).astype(np.float32)
    alive = np.ones(len(envs), dtype=bool)
    state = net.initial_state(len(envs))
    out = {"logp": [], "value": [], "entropy": [], "reward": [], "mask": []}
    while alive.any():
        h, state = net.step(torch.from_numpy(obs.copy()), state)  # obs is overwritten below: autograd keeps x
        logp_all = torch.log_softmax(net.head(h), dim=1)
        probs = logp_all.exp()
        if greedy:
            actions = probs.argmax(1)
        else:
            # inverse-CDF sampling: torch.multinomial with a generator costs ~1 ms a call here
            u = torch.rand(probs.shape[0], 1, generator=gen)
            actions = (probs.detach().cumsum(1) < u).sum(1).clamp_(max=probs.shape[1] - 1)
        out["logp"].append(logp_all.gather(1, actions[:, None]).squeeze(1))
        out["entropy"].append(-(probs * logp_all).sum(1))
        out["value"].append(net.value(h).squeeze(1) if net.value is not None else None)
        rewards = np.zeros(len(envs), dtype=np.float32)
        out["mask"].append(torch.from_numpy(alive.astype(np.float32)))
        acts = actions.tolist()
        for b, env in enumerate(envs):
            if not alive[b]:
                continue
            obs[b], r, terminated, truncated, _ = env.step(acts[b])
            rewards[b] = r
            if terminated or truncated:
                alive[b] = False
                obs[b] = 0.0
        out["reward"].append(torch.from_numpy(rewards))
    return out


def a2c_loss(out: dict, gamma: float, value_coef: float, entropy_coef: float) -> torch.Tensor:
    steps, batch = len(out["reward"]), out["reward"][0].shape[0]
    ret = torch.zeros(batch)
    loss = torch.zeros(())
    for t in reversed(range(steps)):
        mask = out["mask"][t]
        ret = out["reward"][t] + gamma * ret * mask
        advantage = ret - out["value"][t]
        loss = loss + (-(out["logp"][t] * advantage.detach()) + value_coef * advantage.square()
                       - entropy_coef * out["entropy"][t]).mul(mask).sum()
    return loss / (batch * steps)


def run_a2c(p, ctx):
    """The `a2c` operator (runtime/ops/a2c.py)."""
    config = env_config(p.env)
    n_obs, n_actions = spaces_of(config)
    seed = node_seed(p.seed, ctx.seed)
    net = build(p.policy.arch(), n_obs, n_actions, True, seed)
    torch.set_num_threads(1)  # tiny nets stepped one time step at a time: threads cost more than they save
    opt = torch.optim.Adam(net.parameters(), lr=p.lr)
    updates = math.ceil(p.episodes / p.batch)
    start = 0
    if ctx.work_dir is not None:
        restored = checkpoint.load(ctx.work_dir, net, opt)
        if restored is not None:
            start = restored[0]
    envs = [make(config) for _ in range(p.batch)]
    advance = ctx.progress(updates, f"a2c {ctx.node}", unit="update")
    advance(start)
    returns: list[float] = []
    update = start
    try:
        for update in range(start, updates):
            out = rollout(net, envs, env_seeds(seed, TRAIN, update, p.batch), action_generator(seed, TRAIN, update))
            loss = a2c_loss(out, p.gamma, p.value, p.entropy)
            if not math.isfinite(float(loss.detach())):
                raise OpError(f"{ctx.node}: the A2C loss is {float(loss.detach())} at update {update + 1}", field="lr",
                              hint="lower the learning rate or the clip")
            descend(opt, loss, net, p.clip)
            returns.append(float(torch.stack(out["reward"]).sum(0).mean()))
            done = update + 1
            if len(returns) == LOG_EVERY or done == updates:
                ctx.log("return", sum(returns) / len(returns), done * p.batch)
                ctx.log("loss", float(loss.detach()), done * p.batch)
                advance(len(returns))
                returns.clear()
                if done < updates:
                    ctx.check_cancelled()
                    if ctx.work_dir is not None and done % p.checkpoint_every == 0:
                        checkpoint.save(ctx.work_dir, done, net, opt, {})
    except Cancelled:
        if ctx.work_dir is not None and not returns and update + 1 > start:
            checkpoint.save(ctx.work_dir, update + 1, net, opt, {})
        raise
    finally:
        for env in envs:
            env.close()
    training = {"algorithm": "a2c", "episodes": updates * p.batch, "batch": p.batch, "lr": p.lr, "gamma": p.gamma,
                "entropy": p.entropy, "value": p.value, "clip": p.clip, "seed": p.seed}
    return store.save(net.eval(), store.config_of(net, {"env": config}, training), ctx.out_dir)


@torch.no_grad()
def mean_return(policy, env, episodes: int, seed: int, greedy: bool, batch: int = 100) -> dict:
    """Mean (and spread of) the total reward of `episodes` episodes of the policy in `env`."""
    config = env_config(env)
    net, saved = store.load(policy, "cpu", field="policy")
    n_obs, n_actions = spaces_of(config)
    if (saved["inputs"], saved["outputs"]) != (n_obs, n_actions):
        raise OpError(f"the policy takes {saved['inputs']} observations and {saved['outputs']} actions; "
                      f"{config['id']} has {n_obs} and {n_actions}", field="env")
    torch.set_num_threads(1)
    totals: list[float] = []
    for start in range(0, episodes, batch):
        count = min(batch, episodes - start)
        envs = [make(config) for _ in range(count)]
        out = rollout(net, envs, env_seeds(seed, EVAL, start, count), action_generator(seed, EVAL, start), greedy)
        totals += torch.stack(out["reward"]).sum(0).tolist()
        for e in envs:
            e.close()
    values = np.array(totals)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"value": float(values.mean()), "std": std, "stderr": std / math.sqrt(len(values)),
            "episodes": episodes, "greedy": greedy}
