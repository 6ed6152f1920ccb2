"""fit on episodes, error and loss, a2c and returns, called as the executor calls them (params validated
in JSON form, inline values built): they learn something real in seconds, are deterministic, resume
after a cancellation with the uninterrupted result, store nothing pickled, and reject what they cannot
do with located errors."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from _opctx import OpContext
from safetensors.torch import load_file

from expc.runtime.api import Cancelled, OpError
from expc.runtime.registry import load_registry

REG = load_registry()


def call(name: str, ctx, **kw):
    op = REG.get(name)
    return op.fn(REG.built(op.params.model_validate(kw), ctx), ctx)


def call_with(name: str, ctx, inputs: dict, **kw):
    """Inputs (node results) replace placeholders after validation, as the executor does."""
    op = REG.get(name)
    placeholders = {k: "<node>" for k in inputs}
    p = REG.built(op.params.model_validate({**kw, **placeholders}), ctx).model_copy(update=inputs)
    return op.fn(p, ctx)


def weights(model) -> dict[str, torch.Tensor]:
    return load_file(str(model.path / "model.safetensors"))


def same(a, b) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


SMALL = {"size": 8, "patterns": 2, "repeats": 2, "show": 2, "erase": 0.5}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("episodes")
    train = call("pattern_completion", OpContext(root / "a"), **SMALL, n=200, seed=0)
    test = call("pattern_completion", OpContext(root / "b"), **SMALL, n=200, seed=1)
    return train, test


def fit(ctx, data, arch: dict, **kw):
    kw = {"optimizer": {"$op": "adam", "lr": 1e-2}, "steps": 60, "batch": 16, **kw}
    return call_with("fit", ctx, {"data": data}, model=arch, **kw)


PLASTIC = {"$op": "plastic_rnn", "hidden": 8}


def test_episodes_are_a_function_of_seed_and_index(tasks):
    train, test = tasks
    x, y, mask = train.batch(5, 3)
    assert x.shape == (2 * 2 * 2 + 2, 3, 8) and y.shape == (3, 8) and mask.sum(1).tolist() == [4, 4, 4]
    x2, y2, _ = train.batch(6, 1)
    assert np.array_equal(x[:, 1], x2[:, 0]) and np.array_equal(y[1], y2[0])
    assert not np.array_equal(test.batch(5, 1)[0], train.batch(5, 1)[0])
    # the probe is the target with the masked bits zeroed, and the target was shown before
    probe = x[-1, 0]
    assert np.array_equal(probe[~mask[0]], (2 * y[0] - 1)[~mask[0]]) and (probe[mask[0]] == 0).all()
    assert any(np.array_equal(x[t, 0], 2 * y[0] - 1) for t in range(len(x) - 2))
    assert json.loads((train.path / "episodes.json").read_text())["settings"]["size"] == 8


def test_fit_learns_within_episode_memory_and_error_and_loss_read_it(tasks, tmp_path):
    train, test = tasks
    untrained = fit(OpContext(tmp_path / "u"), train, PLASTIC, steps=1)
    model = fit(OpContext(tmp_path / "f"), train, PLASTIC, steps=150)
    before = call_with("error", OpContext(tmp_path / "e0"), {"model": untrained, "data": test})
    after = call_with("error", OpContext(tmp_path / "e1"), {"model": model, "data": test})
    assert 0.35 < before["value"] < 0.65  # chance on the erased bits
    assert after["value"] < before["value"] - 0.1
    assert after["error"] == after["value"] and after["episodes"] == 200
    loss = call_with("loss", OpContext(tmp_path / "l"), {"model": model, "data": test})
    assert loss["value"] == pytest.approx(after["loss"]) and loss["value"] < before["loss"]
    config = json.loads((model.path / "config.json").read_text())
    assert config["architectures"] == ["ExpcPlasticRNN"] and config["task"]["size"] == 8
    assert {f.name for f in model.path.iterdir()} == {"config.json", "model.safetensors"}


def test_fit_is_deterministic_and_resumes_after_a_cancellation(tasks, tmp_path):
    train, _ = tasks
    a = fit(OpContext(tmp_path / "a"), train, PLASTIC, steps=40, checkpoint_every=10)
    b = fit(OpContext(tmp_path / "b"), train, PLASTIC, steps=40, checkpoint_every=10)
    assert same(a, b)
    ctx = OpContext(tmp_path / "c", cancel_at=2)  # cancelled at the check after step 20
    with pytest.raises(Cancelled):
        fit(ctx, train, PLASTIC, steps=40, checkpoint_every=10)
    resumed_ctx = OpContext(tmp_path / "c")
    c = fit(resumed_ctx, train, PLASTIC, steps=40, checkpoint_every=10)
    assert same(a, c) and resumed_ctx.progressed == 40
    assert [s for n, _, s in resumed_ctx.logs if n == "loss"][0] == 30  # it did not start over


@pytest.mark.parametrize("arch", [{"$op": "rnn", "hidden": 6}, {"$op": "lstm", "hidden": 4},
                                  {"$op": "plastic_rnn", "hidden": 6, "plasticity": "retroactive",
                                   "modulation": "per_neuron"},
                                  {"$op": "plastic_rnn", "hidden": 6, "plasticity": "hebbian"}])
def test_every_recurrent_architecture_trains_and_reloads(tasks, tmp_path, arch):
    train, test = tasks
    m = fit(OpContext(tmp_path / "f"), train, arch, steps=3)
    r = call_with("error", OpContext(tmp_path / "e"), {"model": m, "data": test})
    assert 0 <= r["value"] <= 1
    # continuing training from the stored net
    m2 = call_with("fit", OpContext(tmp_path / "g"), {"data": train, "model": m}, steps=2)
    assert not same(m, m2)


def test_located_errors(tasks, tmp_path):
    train, _ = tasks
    with pytest.raises(OpError, match="give steps, not epochs") as e:
        call_with("fit", OpContext(tmp_path / "a"), {"data": train}, model=PLASTIC, epochs=1)
    assert e.value.field == "epochs"
    with pytest.raises(OpError, match=r"mlp\(...\) is a `net` architecture, which fit trains on `tensors`, but the "
                                      r"data is `episodes`") as e:
        call_with("fit", OpContext(tmp_path / "b"), {"data": train}, model={"$op": "mlp"}, steps=1)
    assert e.value.field == "data"
    m = fit(OpContext(tmp_path / "m"), train, PLASTIC, steps=1)
    other = call("pattern_completion", OpContext(tmp_path / "o"), size=5, n=3)
    with pytest.raises(OpError, match="the net takes 8 inputs and gives 8 outputs, the episodes have 5 and 5"):
        call_with("error", OpContext(tmp_path / "e"), {"model": m, "data": other})
    with pytest.raises(ValueError, match="unknown modulation 'perneuron': did you mean 'per_neuron'"):
        REG.get("plastic_rnn").params.model_validate({"modulation": "perneuron"})


CUES = {"$op": "cue_reward", "cues": 4, "cue_size": 4, "trials": 4, "steps_per_trial": 3}


def a2c(ctx, **kw):
    kw = {"policy": {"$op": "plastic_rnn", "hidden": 8}, "env": CUES, "episodes": 32, "batch": 8,
          "checkpoint_every": 2, **kw}
    return call("a2c", ctx, **kw)


def test_a2c_is_deterministic_resumes_and_returns_evaluates_it(tmp_path):
    a = a2c(OpContext(tmp_path / "a"))
    b = a2c(OpContext(tmp_path / "b"))
    assert same(a, b)
    ctx = OpContext(tmp_path / "d", cancel_at=1)
    with pytest.raises(Cancelled):
        a2c(ctx, episodes=8 * 25)  # cancelled at the first check, after update 10
    resumed = OpContext(tmp_path / "d")
    d = a2c(resumed, episodes=8 * 25)
    e = a2c(OpContext(tmp_path / "e"), episodes=8 * 25)
    assert same(d, e) and resumed.progressed == 25
    assert [s for n, _, s in resumed.logs if n == "return"][0] == 8 * 20  # it did not start over
    weights_ = weights(a)
    assert "value.weight" in weights_ and weights_["head.weight"].shape == (2, 8)
    r1 = call_with("returns", OpContext(tmp_path / "r1"), {"policy": a}, env=CUES, episodes=30)
    r2 = call_with("returns", OpContext(tmp_path / "r2"), {"policy": a}, env=CUES, episodes=30)
    assert r1 == r2 and -4 <= r1["value"] <= 4 and r1["episodes"] == 30
    with pytest.raises(OpError, match="the policy takes 12 observations and 2 actions; expc/GridMaze-v0 has 16 and 4"):
        call_with("returns", OpContext(tmp_path / "r3"), {"policy": a}, env={"$op": "maze"}, episodes=1)


class SignBandit(gym.Env):
    """One observed bit per step, +1 for answering it, -1 otherwise: learnable only if the gradient
    of the input weights is right (a rollout that overwrote its saved inputs broke exactly that)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        self.bit = int(self.np_random.integers(2))
        return np.array([2.0 * self.bit - 1.0, 1.0], dtype=np.float32)

    def step(self, action):
        reward = 1.0 if int(action) == self.bit else -1.0
        self.t += 1
        return self._obs(), reward, self.t >= 10, False, {}


@pytest.mark.parametrize("arch", [{"$op": "rnn", "hidden": 8}, {"$op": "plastic_rnn", "hidden": 8}])
def test_a2c_learns_to_answer_what_it_sees(tmp_path, arch):
    from expc.runtime.poet.spec import EnvTemplate

    if "test/SignBandit-v0" not in gym.registry:
        gym.register(id="test/SignBandit-v0", entry_point=SignBandit)
    env = EnvTemplate("test/SignBandit-v0", {}, (), None)
    policy = call_with("a2c", OpContext(tmp_path / "a"), {"env": env}, policy=arch,
                       episodes=16 * 40, lr=1e-2, entropy=0.0)
    r = call_with("returns", OpContext(tmp_path / "r"), {"policy": policy, "env": env}, episodes=50, greedy=True)
    assert r["value"] > 8  # of 10 (chance: 0)


def test_rollout_gradients_equal_a_replay_with_fresh_inputs():
    """The rollout reuses one observation buffer; autograd must still see each step's own input (the
    gradient of the input weights is compared with a replay that builds a new tensor every step)."""
    from expc.runtime.plastic import a2c as A
    from expc.runtime.plastic.envs import make
    from expc.runtime.plastic.nets import build

    cfg = {"id": "expc/CueReward-v0", "kwargs": {"trials": 3}, "horizon": None}
    arch = {"kind": "plastic_rnn", "hidden": 8, "plasticity": "neuromodulated", "modulation": "scalar", "clip": 1.0}
    net = build(arch, 20, 2, True, 0)
    out = A.rollout(net, [make(cfg) for _ in range(3)], A.env_seeds(0, 0, 0, 3), A.action_generator(0, 0, 0))
    A.a2c_loss(out, 0.9, 0.1, 0.03).backward()
    got = {k: p.grad.clone() for k, p in net.named_parameters()}

    net.zero_grad()
    envs = [make(cfg) for _ in range(3)]
    obs = [e.reset(seed=s)[0] for e, s in zip(envs, A.env_seeds(0, 0, 0, 3))]
    gen, state = A.action_generator(0, 0, 0), net.initial_state(3)
    replay = {"logp": [], "value": [], "entropy": [], "reward": [], "mask": []}
    for _ in range(len(out["reward"])):
        h, state = net.step(torch.tensor(np.stack(obs)), state)
        logp = torch.log_softmax(net.head(h), 1)
        u = torch.rand(3, 1, generator=gen)
        actions = (logp.exp().detach().cumsum(1) < u).sum(1).clamp(max=1)
        replay["logp"].append(logp.gather(1, actions[:, None]).squeeze(1))
        replay["entropy"].append(-(logp.exp() * logp).sum(1))
        replay["value"].append(net.value(h).squeeze(1))
        steps = [e.step(int(a)) for e, a in zip(envs, actions)]
        obs = [s[0] for s in steps]
        replay["reward"].append(torch.tensor([s[1] for s in steps], dtype=torch.float32))
        replay["mask"].append(torch.ones(3))
    A.a2c_loss(replay, 0.9, 0.1, 0.03).backward()
    for k, p in net.named_parameters():
        assert torch.allclose(got[k], p.grad, atol=1e-6), k


def test_a_hand_set_plastic_net_completes_patterns_and_the_same_net_without_plasticity_cannot(tmp_path):
    """The rule itself can do the task: identity input and read-out, w = 0, a small constant alpha and
    a constant modulator make a Hopfield-like memory written during the episode (what training should
    find; examples/backpropamine.exp reports how close it gets)."""
    from expc.runtime.plastic.nets import build
    from expc.runtime.plastic.train import evaluate

    test = call("pattern_completion", OpContext(tmp_path / "t"), n=200, seed=1)
    arch = {"kind": "plastic_rnn", "hidden": 32, "plasticity": "neuromodulated", "modulation": "scalar", "clip": 1.0}
    errors = []
    for alpha in (0.05, 0.0):
        net = build(arch, 32, 32, False, 0)
        with torch.no_grad():
            net.i2h.weight.copy_(torch.eye(32))
            net.i2h.bias.zero_()
            net.w.zero_()
            net.alpha.fill_(alpha)
            net.mod.weight.zero_()
            net.mod.bias.fill_(float(torch.atanh(torch.tensor(0.005))))
            net.head.weight.copy_(5 * torch.eye(32))
            net.head.bias.zero_()
        errors.append(evaluate(net, test, "cpu")["error"])
    assert errors[0] < 0.05 and errors[1] > 0.45
