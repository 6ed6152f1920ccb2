"""Compile a (specialized, folded) merge IR into one per-tensor function.

`compile_lin(lin)` returns `f(x, name, out=None) -> Tensor` where `x[i]` is operand i's float32
tensor (or a chunk of it, for elementwise programs) and `out` an optional reusable result buffer.
Each operand is a leaf that the caller loads once; linear
combinations accumulate in place into one buffer (`acc = c0*x0; acc += c1*x1; ...`), so the only
temporaries are those the non-linear kernels need. Compiled functions are cached by IR, and the IR
of a tensor only depends on which where() branches it takes, so a model compiles a handful of them.
A tensorwise call runs the kernel its operator declares (`@op(..., kernel=...)`), which the IR's
`KernelCall` carries: nothing here knows an operator by name.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch

from expc.runtime.merge.expr import KernelCall, OperandRef, Lin, Prod, Quot, thaw

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
    if isinstance(a, OperandRef):
        i = a.index
        return lambda x, name: x[i]
    if isinstance(a, Prod):
        fa, fb = compile_lin_or_const(a.a), compile_lin_or_const(a.b)
        return lambda x, name: torch.mul(fa(x, name), fb(x, name))
    if isinstance(a, Quot):
        fa, fb = compile_lin_or_const(a.a), compile_lin_or_const(a.b)
        return lambda x, name: torch.div(fa(x, name), fb(x, name))
    assert isinstance(a, KernelCall)
    return _compile_call(a)


def compile_lin_or_const(lin: Lin) -> TensorFn:
    if lin.terms:
        return compile_lin(lin)
    c = lin.const
    return lambda x, name: torch.tensor(c, dtype=torch.float32)


def _compile_call(call: KernelCall) -> TensorFn:
    """kernel(p, name) per tensor: p is the operator's params model, each model field holding the
    tensor of its (compiled) argument, or a list of them."""
    kernel, params = call.op.load_kernel(), call.op.params
    plain: dict = {}
    models: list[tuple[str, TensorFn]] = []
    lists: list[tuple[str, list[TensorFn]]] = []
    for f, v in call.args:
        info = call.op.field(f)
        if info is None or info.input_types is None:
            plain[f] = thaw(v)
        elif info.is_list:
            lists.append((f, [compile_lin(m) for m in v]))
        else:
            models.append((f, compile_lin(v)))

    def run(x, name):
        # validated when the expression was parsed: construct without validating again (tensors)
        tensors = {f: fn(x, name) for f, fn in models}
        tensors.update((f, [fn(x, name) for fn in fns]) for f, fns in lists)
        return kernel(params.model_construct(**plain, **tensors), name)

    return run
