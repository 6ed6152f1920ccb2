"""The Backpropamine update rules of expc.runtime.plastic.nets against a hand computation (plain Python
floats, no torch) on a net of 2 neurons and 1 input, four time steps."""

from __future__ import annotations

import math

import pytest
import torch

from expc.runtime.plastic.nets import RecurrentNet, build, n_params

W = [[0.5, -0.3], [0.2, 0.4]]
ALPHA = [[0.7, 0.1], [-0.6, 0.9]]
W_IN, B_IN = [1.0, -0.5], [0.1, 0.2]
MOD_W, MOD_B = [0.8, -1.2], 0.3
FAN_W, FAN_B = [1.5, -0.5], [0.0, 0.1]
ETA = 0.25
XS = [1.0, -1.0, 0.5, 1.0]


def plastic(plasticity: str, modulation: str = "scalar", clip: float = 1.0) -> RecurrentNet:
    arch = {"kind": "plastic_rnn", "hidden": 2, "plasticity": plasticity, "modulation": modulation, "clip": clip}
    net = build(arch, 1, 1, False, seed=0)
    with torch.no_grad():
        net.w.copy_(torch.tensor(W))
        net.i2h.weight.copy_(torch.tensor(W_IN).reshape(2, 1))
        net.i2h.bias.copy_(torch.tensor(B_IN))
        if plasticity != "none":
            net.alpha.copy_(torch.tensor(ALPHA))
        if hasattr(net, "eta"):
            net.eta.fill_(ETA)
        if hasattr(net, "mod"):
            net.mod.weight.copy_(torch.tensor([MOD_W]))
            net.mod.bias.fill_(MOD_B)
        if hasattr(net, "fanout"):
            net.fanout.weight.copy_(torch.tensor(FAN_W).reshape(2, 1))
            net.fanout.bias.copy_(torch.tensor(FAN_B))
    return net


def by_hand(plasticity: str, modulation: str = "scalar", clip: float = 1.0):
    """(h after each step, Hebb after the last) computed element by element."""
    h = [0.0, 0.0]
    hebb = [[0.0, 0.0], [0.0, 0.0]]
    trace = [[0.0, 0.0], [0.0, 0.0]]
    hs = []
    for x in XS:
        new = []
        for j in range(2):  # neuron j receives from every i through w[i][j] + alpha[i][j] * hebb[i][j]
            a = W_IN[j] * x + B_IN[j]
            for i in range(2):
                weight = W[i][j] + (ALPHA[i][j] * hebb[i][j] if plasticity != "none" else 0.0)
                a += h[i] * weight
            new.append(math.tanh(a))
        outer = [[h[i] * new[j] for j in range(2)] for i in range(2)]
        if plasticity in ("neuromodulated", "retroactive"):
            m = math.tanh(sum(MOD_W[k] * new[k] for k in range(2)) + MOD_B)
            ms = [FAN_W[j] * m + FAN_B[j] for j in range(2)] if modulation == "per_neuron" else [m, m]
        if plasticity == "hebbian":
            hebb = [[(1 - ETA) * hebb[i][j] + ETA * outer[i][j] for j in range(2)] for i in range(2)]
        elif plasticity == "neuromodulated":
            hebb = [[min(clip, max(-clip, hebb[i][j] + ms[j] * outer[i][j])) for j in range(2)] for i in range(2)]
        elif plasticity == "retroactive":  # Hebb moves along the old eligibility trace, then the trace moves
            hebb = [[min(clip, max(-clip, hebb[i][j] + ms[j] * trace[i][j])) for j in range(2)] for i in range(2)]
            trace = [[(1 - ETA) * trace[i][j] + ETA * outer[i][j] for j in range(2)] for i in range(2)]
        h = new
        hs.append(h)
    return hs, hebb, trace


def flat(rows):
    return [v for row in rows for v in row]


def run_net(net: RecurrentNet):
    state = net.initial_state(1)
    hs = []
    with torch.no_grad():
        for x in XS:
            h, state = net.step(torch.tensor([[x]]), state)
            hs.append(h[0].tolist())
    return hs, state


CASES = [("none", "scalar"), ("hebbian", "scalar"), ("neuromodulated", "scalar"), ("neuromodulated", "per_neuron"),
         ("retroactive", "scalar"), ("retroactive", "per_neuron")]


@pytest.mark.parametrize("plasticity,modulation", CASES)
def test_update_rule_matches_the_hand_computation(plasticity, modulation):
    hs, state = run_net(plastic(plasticity, modulation))
    want_hs, want_hebb, want_trace = by_hand(plasticity, modulation)
    assert flat(hs) == pytest.approx(flat(want_hs), abs=1e-6)
    if plasticity != "none":
        assert flat(state[1][0].tolist()) == pytest.approx(flat(want_hebb), abs=1e-6)
        # the trace is not trivially zero, so later steps' activity depends on it
        assert max(abs(v) for v in flat(want_hebb)) > 1e-2
    if plasticity == "retroactive":
        assert flat(state[2][0].tolist()) == pytest.approx(flat(want_trace), abs=1e-6)


def test_the_modulated_trace_is_clipped():
    net = plastic("neuromodulated", clip=0.01)
    _, state = run_net(net)
    want = by_hand("neuromodulated", clip=0.01)[1]
    assert flat(state[1][0].tolist()) == pytest.approx(flat(want), abs=1e-6)
    assert state[1].abs().max().item() == pytest.approx(0.01)


def test_plain_rnn_plasticity_none_has_no_plastic_parameters():
    arch = {"kind": "plastic_rnn", "hidden": 4, "plasticity": "none", "modulation": "scalar", "clip": 1.0}
    names = {n for n, _ in build(arch, 3, 2, False, 0).named_parameters()}
    assert names == {"w", "i2h.weight", "i2h.bias", "head.weight", "head.bias"}


def test_gradients_reach_alpha_and_the_modulator_through_the_episode():
    net = plastic("retroactive", "per_neuron")
    state = net.initial_state(1)
    for x in XS:
        h, state = net.step(torch.tensor([[x]]), state)
    net.head(h).sum().backward()
    for name in ("alpha", "eta", "mod.weight", "fanout.weight", "w"):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_parameter_counts_of_the_example_nets_are_close():
    sizes = {k: n_params(build({"kind": k, "hidden": h, "plasticity": "neuromodulated", "modulation": "per_neuron",
                                "clip": 1.0}, 32, 32, False, 0))
             for k, h in (("plastic_rnn", 32), ("rnn", 40), ("lstm", 18))}
    assert sizes == {"plastic_rnn": 4257, "rnn": 4272, "lstm": 4352}  # the numbers examples/backpropamine.exp states
