"""The non-linear per-tensor kernels, on float32 tensors of one parameter. See FORMULAS.md.

Each follows the published method as implemented by mergekit, tensor by tensor:
TIES-Merging (Yadav et al. 2023), DARE (Yu et al. 2023), SLERP (mergekit's `slerp`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import math

import torch

SLERP_DOT_THRESHOLD = 0.9995
SLERP_EPS = 1e-8


def trim_magnitude(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the k = floor(density * n) largest-magnitude entries (ties at the threshold are kept)."""
    n = delta.numel()
    k = int(density * n)
    if k >= n:
        return delta
    if k <= 0:
        return torch.zeros_like(delta)
    mag = delta.abs()
    threshold = mag.reshape(-1).kthvalue(n - k + 1).values
    return delta * (mag >= threshold)


def ties(
    base: torch.Tensor,
    models: list[torch.Tensor],
    weights: list[float],
    density: float,
    normalize: bool = True,
) -> torch.Tensor:
    """TIES: trim each task vector, elect a sign per entry by weighted mass, disjoint (weighted) mean."""
    deltas = [trim_magnitude(m - base, density) for m in models]
    mass = torch.zeros_like(base)
    for w, d in zip(weights, deltas):
        mass.add_(d, alpha=w)
    sign = torch.where(mass >= 0, 1.0, -1.0)
    del mass
    num = torch.zeros_like(base)
    den = torch.zeros_like(base) if normalize else None
    for w, d in zip(weights, deltas):
        agree = (torch.sign(d * w) == sign).to(base.dtype)
        num.addcmul_(d, agree, value=w)
        if den is not None:
            den.add_(agree, alpha=w)
    if den is not None:
        den[den == 0] = 1.0
        num.div_(den)
    return num.add_(base)


def dare_seed(seed: int, tensor: str, index: int) -> int:
    """The generator seed of operand `index`'s drop mask for one tensor: stable across runs and devices."""
    digest = hashlib.sha256(f"{seed}\0{tensor}\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def dare_mask(shape, density: float, seed: int, tensor: str, index: int) -> torch.Tensor:
    """Keep-mask with P(keep) = density, drawn on the CPU (so that it is the same on every device)."""
    g = torch.Generator(device="cpu").manual_seed(dare_seed(seed, tensor, index))
    return torch.rand(shape, generator=g, dtype=torch.float32) < density


def dare(
    base: torch.Tensor,
    models: list[torch.Tensor],
    weights: list[float],
    density: float,
    rescale: bool,
    seed: int,
    tensor: str,
) -> torch.Tensor:
    """DARE: drop each task-vector entry with probability 1 - density, rescale by 1/density, add."""
    out = base.clone()
    if density <= 0.0:
        return out
    for i, (w, m) in enumerate(zip(weights, models)):
        delta = m - base
        if density < 1.0:
            mask = dare_mask(base.shape, density, seed, tensor, i).to(base.device, non_blocking=True)
            delta.mul_(mask)
            if rescale:
                delta.div_(density)
        out.add_(delta, alpha=w)
    return out


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of the flattened tensors; lerp when they are nearly colinear."""
    na = torch.linalg.vector_norm(a.double()).item()
    nb = torch.linalg.vector_norm(b.double()).item()
    ua = 1.0 / na if na > SLERP_EPS else 1.0
    ub = 1.0 / nb if nb > SLERP_EPS else 1.0
    dot = torch.dot(a.reshape(-1).double(), b.reshape(-1).double()).item() * ua * ub
    if abs(dot) > SLERP_DOT_THRESHOLD:
        s0, s1 = 1.0 - t, t
    else:
        theta0 = math.acos(dot)
        sin0 = math.sin(theta0)
        s0 = math.sin(theta0 * (1.0 - t)) / sin0
        s1 = math.sin(theta0 * t) / sin0
    return torch.mul(a, s0).add_(b, alpha=s1)


def cast(x: torch.Tensor, dtype: str) -> torch.Tensor:
    """Round to `dtype` (values as that dtype would store them), computing on in float32."""
    return x.to(getattr(torch, dtype)).to(torch.float32)


# ---------------------------------------------------------------------- the operators' declared kernels
# `@op(..., tensorwise=True, kernel="expc.runtime.merge.kernels:NAME")` (expc.runtime.ops.merge): called
# per tensor as kernel(p, tensor), p's model fields holding that tensor of each argument.


def _weights(weights, n: int) -> list[float]:
    return [1.0] * n if weights is None else [float(w) for w in weights]


def ties_kernel(p, tensor: str) -> torch.Tensor:
    return ties(p.base, p.models, _weights(p.weights, len(p.models)), p.density, p.normalize)


def dare_kernel(p, tensor: str) -> torch.Tensor:
    return dare(p.base, p.models, _weights(p.weights, len(p.models)), p.density, p.rescale, p.seed, tensor)


def slerp_kernel(p, tensor: str) -> torch.Tensor:
    return slerp(p.a, p.b, p.t)


def where_kernel(p, tensor: str) -> torch.Tensor:
    # The merge resolves where() per tensor name before compiling (expr.specialize), so that the branch
    # not taken is never read; this is the same rule, for a where() reached some other way.
    return p.a if fnmatch.fnmatchcase(tensor, p.pattern) else p.b


def cast_kernel(p, tensor: str) -> torch.Tensor:
    return cast(p.model, p.dtype)
