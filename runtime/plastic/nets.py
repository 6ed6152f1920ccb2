"""torch modules for the recurrent architectures of runtime/ops/plastic.py: `rnn`, `lstm` and
`plastic_rnn` (Backpropamine, Miconi et al. 2019), stepped one time step at a time so that an
episode's state (hidden activity, Hebbian trace, eligibility trace) is carried by the caller.

A plastic layer's recurrent weight from neuron i to neuron j is w[i, j] + alpha[i, j] * Hebb[b, i, j]
(Hebb is per episode b, a state, not a parameter). With h = h(t-1), h' = h(t) and
outer = h ⊗ h' (outer[b, i, j] = h[b, i] * h'[b, j]), the trace follows one of four rules:

- "none":           no Hebbian term (alpha is absent): an Elman RNN written like the plastic ones;
- "hebbian":        Hebb <- (1 - eta) Hebb + eta outer, eta a learned scalar (Miconi et al. 2018);
- "neuromodulated": Hebb <- clip(Hebb + M(t) outer), M(t) = tanh(mod(h')) output by the network;
- "retroactive":    Hebb <- clip(Hebb + M(t) E), then E <- (1 - eta) E + eta outer (the eligibility
                    trace of the paper's eq. 4-5: the modulator acts on the trace of earlier coincidences).

M is one number per episode ("scalar") or, through a learned fan-out, one per postsynaptic neuron
("per_neuron", the published code's `modfanout`). Tensors are named `i2h.*`, `w`, `alpha`, `eta`,
`mod.*`, `fanout.*`, then `head.*` (outputs) and `value.*` (an A2C critic, when asked for).
"""

from __future__ import annotations

import torch
import torch.nn as nn

State = tuple[torch.Tensor, ...]


def hebbian_update(hebb: torch.Tensor, outer: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    """The non-modulated rule: a running average of coincidences."""
    return (1 - eta) * hebb + eta * outer


def modulated_update(hebb: torch.Tensor, outer: torch.Tensor, m: torch.Tensor, clip: float) -> torch.Tensor:
    """Neuromodulated rule: `m` broadcasts over [batch, pre, post] ([B, 1, 1] or [B, 1, H])."""
    return torch.clamp(hebb + m * outer, -clip, clip)


def retroactive_update(hebb: torch.Tensor, trace: torch.Tensor, outer: torch.Tensor, m: torch.Tensor,
                       eta: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Retroactive neuromodulation: (new Hebb, new eligibility trace)."""
    return torch.clamp(hebb + m * trace, -clip, clip), (1 - eta) * trace + eta * outer


class RecurrentNet(nn.Module):
    """One recurrent layer (an RNN cell, an LSTM cell or a plastic layer) and linear read-outs."""

    def __init__(self, arch: dict, inputs: int, outputs: int, value_head: bool = False):
        super().__init__()
        self.arch, self.inputs, self.outputs = dict(arch), int(inputs), int(outputs)
        self.kind = arch["kind"]
        h = self.hidden = int(arch["hidden"])
        if self.kind == "rnn":
            self.cell = nn.RNNCell(inputs, h)
        elif self.kind == "lstm":
            self.cell = nn.LSTMCell(inputs, h)
        elif self.kind == "plastic_rnn":
            self.plasticity = arch["plasticity"]
            self.modulation = arch["modulation"]
            self.clip = float(arch["clip"])
            self.i2h = nn.Linear(inputs, h)
            # near zero, as published (0.001 * U(0, 1)): a random w would make the last input echo in
            # the activity, which a memory has to unlearn first
            self.w = nn.Parameter(0.001 * torch.rand(h, h))
            if self.plasticity != "none":
                self.alpha = nn.Parameter(0.001 * torch.rand(h, h))
            if self.plasticity in ("hebbian", "retroactive"):
                self.eta = nn.Parameter(torch.tensor(0.1))
            if self.plasticity in ("neuromodulated", "retroactive"):
                # M(t) starts near 0 (the published code starts it at tanh of a default-initialized
                # layer): a trace saturated at the clip passes no gradient to M
                self.mod = nn.Linear(h, 1)
                nn.init.uniform_(self.mod.weight, -0.01, 0.01)
                nn.init.zeros_(self.mod.bias)
                if self.modulation == "per_neuron":
                    self.fanout = nn.Linear(1, h)
                    nn.init.zeros_(self.fanout.bias)
        else:
            raise ValueError(f"unknown recurrent architecture {self.kind!r}")
        self.head = nn.Linear(h, outputs)
        self.value = nn.Linear(h, 1) if value_head else None

    def initial_state(self, batch: int, device=None) -> State:
        """Zero activity and traces at the start of an episode."""
        h = self.hidden
        zeros = torch.zeros(batch, h, device=device)
        if self.kind == "lstm":
            return zeros, zeros.clone()
        if self.kind == "plastic_rnn" and self.plasticity != "none":
            trace = torch.zeros(batch, h, h, device=device)
            return (zeros, trace, trace.clone()) if self.plasticity == "retroactive" else (zeros, trace)
        return (zeros,)

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """(new hidden activity [B, H], new state) after one time step with input x [B, inputs]."""
        if self.kind == "rnn":
            h = self.cell(x, state[0])
            return h, (h,)
        if self.kind == "lstm":
            h, c = self.cell(x, state)
            return h, (h, c)
        prev = state[0]
        if self.plasticity == "none":
            h = torch.tanh(self.i2h(x) + prev @ self.w)
            return h, (h,)
        hebb = state[1]
        weights = self.w + self.alpha * hebb  # [B, H, H]
        h = torch.tanh(self.i2h(x) + torch.bmm(prev.unsqueeze(1), weights).squeeze(1))
        outer = torch.bmm(prev.unsqueeze(2), h.unsqueeze(1))
        if self.plasticity == "hebbian":
            return h, (h, hebbian_update(hebb, outer, self.eta))
        m = torch.tanh(self.mod(h)).unsqueeze(2)  # [B, 1, 1]
        if self.modulation == "per_neuron":
            m = self.fanout(m)  # [B, 1, H]: one rate per postsynaptic neuron (a column of Hebb)
        if self.plasticity == "neuromodulated":
            return h, (h, modulated_update(hebb, outer, m, self.clip))
        new_hebb, new_trace = retroactive_update(hebb, state[2], outer, m, self.eta, self.clip)
        return h, (h, new_hebb, new_trace)


def build(arch: dict, inputs: int, outputs: int, value_head: bool, seed: int) -> RecurrentNet:
    """A network with its initialization drawn from `seed` (the global RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RecurrentNet(arch, inputs, outputs, value_head)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
