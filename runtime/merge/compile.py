"""Compile a (specialized, folded) merge IR into one per-tensor function.

`compile_lin(lin)` returns `f(x, name, out=None) -> Tensor` where `x[i]` is operand i's float32
tensor (or a chunk of it, for elementwise programs) and `out` an optional reusable result buffer.
Each operand is a leaf that the caller loads once; linear
combinations accumulate in place into one buffer (`acc = c0*x0; acc += c1*x1; ...`), so the only
temporaries are those the non-linear kernels need. Compiled functions are cached by IR, and the IR
of a tensor only depends on which where() branches it takes, so a model compiles a handful of them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch

from expc.runtime.merge import kernels
from expc.runtime.merge.expr import Call, Leaf, Lin, Prod, Quot

TensorFn = Callable[..., torch.Tensor]  # f(x: dict[int, Tensor], name: str) -> Tensor


@lru_cache(maxsize=256)
def compile_lin(lin: Lin) -> TensorFn:
    parts = [(_compile_atom(a), k) for a, k in lin.terms]
    const = lin.const
    if not parts:
        raise ValueError("an argument whose models cancel out (it is the constant %g)" % const)

    def run(x: dict[int, torch.Tensor], name: str, out: torch.Tensor | None = None) -> torch.Tensor:
        (f0, k0), rest = parts[0], parts[1:]
        # A fresh (or the caller's reusable) buffer: inputs are never written to.
        acc = torch.mul(f0(x, name), k0, out=out) if out is not None else torch.mul(f0(x, name), k0)
        for f, k in rest:
            acc.add_(f(x, name), alpha=k)
        if const:
            acc.add_(const)
        return acc

    return run


def _compile_atom(a) -> TensorFn:
    if isinstance(a, Leaf):
        i = a.index
        return lambda x, name: x[i]
    if isinstance(a, Prod):
        fa, fb = compile_lin_or_const(a.a), compile_lin_or_const(a.b)
        return lambda x, name: torch.mul(fa(x, name), fb(x, name))
    if isinstance(a, Quot):
        fa, fb = compile_lin_or_const(a.a), compile_lin_or_const(a.b)
        return lambda x, name: torch.div(fa(x, name), fb(x, name))
    assert isinstance(a, Call)
    return _KERNELS[a.name](a)


def compile_lin_or_const(lin: Lin) -> TensorFn:
    if lin.terms:
        return compile_lin(lin)
    c = lin.const
    return lambda x, name: torch.tensor(c, dtype=torch.float32)


def _models(call: Call, field: str) -> list[TensorFn]:
    return [compile_lin(m) for m in call.arg(field)]


def _weights(call: Call, n: int) -> list[float]:
    w = call.arg("weights")
    return [1.0] * n if w is None else [float(v) for v in w]


def _ties(call: Call) -> TensorFn:
    fbase, fms = compile_lin(call.arg("base")), _models(call, "models")
    weights, density, normalize = _weights(call, len(fms)), call.arg("density"), call.arg("normalize")

    def run(x, name):
        return kernels.ties(fbase(x, name), [f(x, name) for f in fms], weights, density, normalize)

    return run


def _dare(call: Call) -> TensorFn:
    fbase, fms = compile_lin(call.arg("base")), _models(call, "models")
    weights = _weights(call, len(fms))
    density, rescale, seed = call.arg("density"), call.arg("rescale"), call.arg("seed")

    def run(x, name):
        return kernels.dare(fbase(x, name), [f(x, name) for f in fms], weights, density, rescale, seed, name)

    return run


def _slerp(call: Call) -> TensorFn:
    fa, fb, t = compile_lin(call.arg("a")), compile_lin(call.arg("b")), call.arg("t")
    return lambda x, name: kernels.slerp(fa(x, name), fb(x, name), t)


def _cast(call: Call) -> TensorFn:
    f, dtype = compile_lin(call.arg("model")), call.arg("dtype")
    return lambda x, name: kernels.cast(f(x, name), dtype)


def _where(call: Call) -> TensorFn:
    raise AssertionError("where() is resolved per tensor name before compiling (expr.specialize)")


_KERNELS = {"ties": _ties, "dare": _dare, "slerp": _slerp, "cast": _cast, "where": _where}
