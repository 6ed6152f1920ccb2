"""FOP, first-order preconditioning (Moskovitz et al. 2019, "First-Order Preconditioning via
Hypergradient Descent", arXiv:1910.08461), written here by hand in torch: no maintained library
implements it.

Each weight's gradient, viewed as a matrix G of shape [rows, d], is replaced by G P with
P = Mᵀ M (positive semi-definite by construction, M starts as the identity), and the base optimizer
(SGD or Adam) steps with that. The loss after a step θ_t = θ_{t-1} - ε G_{t-1} P depends on P
through that step, so its hypergradient needs only first-order information, the gradients of two
consecutive steps:

    A    = ∂J(θ_t)/∂P = -ε_{t-1} G_{t-1}ᵀ G_t          (d × d)
    ∂J/∂M = M (A + Aᵀ)
    M   <- M - ρ ∂J/∂M                                  (ρ = hyper_lr; every `every` steps)

and then step t uses G_t Mᵀ M. The hypergradient is exact for plain SGD; with momentum or Adam the
base optimizer's own transformation of the gradient is left out of it (first-order, as in the paper,
where FOP preconditions the gradient an ordinary optimizer receives).

Which matrix a weight gets (`structure`):
- "spatial": a conv kernel [out, in, kh, kw] is G of shape [out·in, kh·kw]: one (kh·kw)² matrix per
  layer shared by all channel pairs (the paper's spatial preconditioner); other weights as "auto";
- "input": G of shape [shape[0], the rest]: a matrix over a weight's trailing (input) dimensions;
- "diagonal": P = diag(m²) over those dimensions (M diagonal): ∂J/∂m = 2 m ∘ diag(A);
- "auto": spatial for conv kernels wider than 1×1, input for other weights, diagonal when d > 2,048.
Vectors (biases, norms) are not preconditioned.

A parameter's preconditioner state (`fop_m`, `fop_prev`, `fop_prev_lr`, `fop_t`) joins the base
optimizer's state in state_dict(), so one checkpoint holds both.
"""

from __future__ import annotations

import math

import torch

MAX_DENSE = 2048


def layout(shape: torch.Size, structure: str) -> tuple[str, int, int] | None:
    """(kind "matrix" | "diagonal", rows, d) of a parameter's preconditioner, or None."""
    if len(shape) < 2:
        return None
    numel = math.prod(shape)
    if len(shape) == 4 and shape[2] * shape[3] > 1 and structure in ("auto", "spatial"):
        d = shape[2] * shape[3]
        return "matrix", numel // d, d
    d = numel // shape[0]
    if structure == "diagonal" or (structure in ("auto", "spatial") and d > MAX_DENSE):
        return "diagonal", shape[0], d
    return "matrix", shape[0], d


class FOP(torch.optim.Optimizer):
    """Preconditions the gradients, then lets `base` step. Shares the base's param groups (so the
    scheduled lr set on this optimizer's groups is the base's); the preconditioners are kept apart
    from the base's state (torch's Adam initializes a parameter's state only when it is empty) and
    merged into it in state_dict(), keys `fop_*`, so one checkpoint holds both."""

    def __init__(self, base: torch.optim.Optimizer, hyper_lr: float = 1e-4, structure: str = "auto", every: int = 1):
        if structure not in ("auto", "spatial", "input", "diagonal"):
            raise ValueError(f"unknown FOP structure {structure!r}")
        self.base = base
        self.hyper_lr, self.structure, self.every = float(hyper_lr), structure, int(every)
        super().__init__(base.param_groups, base.defaults)
        self.state = base.state
        self.preconditioners: dict[torch.Tensor, dict] = {}

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]  # state_dict's numbering

    def state_dict(self) -> dict:
        sd = self.base.state_dict()
        state = dict(sd["state"])
        for i, p in enumerate(self._params()):
            if p in self.preconditioners:
                state[i] = {**state.get(i, {}), **self.preconditioners[p]}  # a copy: never the live dicts
        return {**sd, "state": state}

    def load_state_dict(self, state_dict: dict) -> None:
        base_state, fop_state = {}, {}
        for i, st in state_dict["state"].items():
            base_state[i] = {k: v for k, v in st.items() if not k.startswith("fop_")}
            fop_state[int(i)] = {k: v for k, v in st.items() if k.startswith("fop_")}
        self.base.load_state_dict({**state_dict, "state": {i: s for i, s in base_state.items() if s}})
        self.param_groups, self.state = self.base.param_groups, self.base.state
        self.preconditioners = {}
        for i, p in enumerate(self._params()):
            st = fop_state.get(i)
            if st:
                self.preconditioners[p] = {k: v.to(p.device, p.dtype) if isinstance(v, torch.Tensor) else v
                                           for k, v in st.items()}

    @torch.no_grad()
    def precondition(self) -> None:
        """Update each preconditioner from the last two gradients and replace each gradient by G P."""
        for group in self.param_groups:
            lr = float(group["lr"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                lay = layout(p.shape, self.structure)
                if lay is None:
                    continue
                kind, rows, d = lay
                st = self.preconditioners.setdefault(p, {})
                g = p.grad.reshape(rows, d)
                if "fop_m" not in st:
                    st["fop_m"] = (torch.ones(d, dtype=p.dtype, device=p.device) if kind == "diagonal"
                                   else torch.eye(d, dtype=p.dtype, device=p.device))
                    st["fop_t"] = 0
                m, t = st["fop_m"], st["fop_t"]
                if t > 0 and t % self.every == 0 and "fop_prev" in st and self.hyper_lr > 0:
                    prev, eps = st["fop_prev"], st["fop_prev_lr"]
                    if kind == "diagonal":
                        a = (prev * g).sum(0).mul_(-eps)  # diag(A)
                        m.sub_(self.hyper_lr * 2.0 * m * a)
                    else:
                        a = (prev.T @ g).mul_(-eps)
                        m.sub_(self.hyper_lr * (m @ (a + a.T)))
                if (t + 1) % self.every == 0:
                    st["fop_prev"] = g.clone()
                    st["fop_prev_lr"] = lr
                if kind == "diagonal":
                    pre = g * (m * m)
                else:
                    pre = g @ (m.T @ m)
                p.grad.copy_(pre.reshape(p.grad.shape))
                st["fop_t"] = t + 1

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.precondition()
        self.base.step()
        return loss
