"""Streaming execution of a merge: headers checked, then tensor by tensor read -> compute -> write.

A reader thread fills a small ring of buffers with the next tensor (or chunk of a tensor) of every
operand the program needs (os.preadv from the page cache; pinned memory on CUDA so the copy to the
device is asynchronous) while the main thread computes the current one and appends it to the output
shard. Elementwise programs (linear combinations, casts, products) run in fixed-size chunks, so the
working set stays in the CPU cache and peak memory does not depend on tensor or model size; TIES,
DARE and SLERP need a whole tensor (its magnitude ranking, norm or mask), so they load one tensor of
each operand at a time. Tensors that a program copies unchanged (a where() branch, non-float
buffers) are copied as bytes.

A merge whose every tensor is a plain linear combination of float32 / float16 operands (task
arithmetic, a weighted average: no tensorwise kernel, no bfloat16) runs without torch: the same
reader and writer threads, the per-chunk arithmetic in numpy (`acc = c0*x0; acc += c1*x1 ...` in
float32, as the torch path computes it). `import torch` alone takes seconds, more than the merge of a
small model; torch is imported only where the torch path runs.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from expc.runtime.api import OpError
from expc.runtime.merge.expr import (
    Lin,
    OperandRef,
    coefficient_warnings,
    describe,
    is_elementwise,
    output_cast,
    parse,
    specialize,
)
from expc.runtime.merge.modeldir import WEIGHT_SUFFIXES, Operand, check_compatible, load_operand
from expc.runtime.merge.safetensors_io import (
    DTYPE_NAMES,
    DTYPE_OF_ST,
    INDEX_NAME,
    OutSpec,
    ShardedWriter,
    TensorInfo,
)
from expc.runtime.merge.streaming import WRITE_DEPTH, Item, Reader, not_finite, stream
from expc.runtime.values import ModelDir

if TYPE_CHECKING:
    import torch

DEFAULT_SHARD_BYTES = 2 * 1024**3
CHUNK_ELEMS = {"cpu": 1 << 20, "cuda": 1 << 24}
# The reader thread needs a core of its own: torch's OpenMP workers spin between parallel regions,
# and on a 2-core machine a reader competing with 2 of them made the merge 3-5x slower (measured).
# So on the CPU the merge computes with one core fewer than the process may use.

# Stored dtypes the numpy path computes in (numpy has no bfloat16).
NUMPY_FLOATS = {"F32": np.float32, "F16": np.float16}


@lru_cache(maxsize=None)
def _torch_dtypes() -> dict:
    import torch

    return {
        "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
        "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
        "BOOL": torch.bool,
    }  # fmt: skip


@dataclass
class Task:
    """One output tensor: `copy` (bytes of operand `source`), `chunk` (elementwise) or `whole`."""

    name: str
    shape: tuple[int, ...]
    out_dtype: str  # safetensors name
    kind: str
    lin: Lin | None = None
    source: int = 0
    inputs: dict[int, TensorInfo] = field(default_factory=dict)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def run_algebra(
    models: list[Any],
    expr: dict,
    ctx,
    *,
    fields: list[str] | None = None,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    chunk_elems: int | None = None,
    use_numpy: bool = True,
) -> ModelDir:
    """Evaluate the merge expression `expr` over `models` (ModelDir values or directories) into ctx.out_dir;
    its tensorwise calls are the operators of the program's registry (ctx.operator). A plain linear
    merge of float32/float16 tensors runs in numpy on the CPU, without importing torch (`use_numpy=False`
    forces the torch path, for comparisons)."""
    fields = fields or [f"models.{i}" for i in range(len(models))]
    if not models:
        raise OpError("a merge needs at least one model", field="expr")
    lin = parse(expr, len(models), ctx.operator)
    body, cast_dtype = output_cast(lin)
    for msg in coefficient_warnings(lin):
        ctx.warn(msg, field="expr")

    operands = [load_operand(Path(getattr(m, "path", m)), fields[i]) for i, m in enumerate(models)]
    check_compatible(operands)
    tasks, hits = plan_tasks(body, operands, cast_dtype)
    for pattern, n in hits.items():
        if n == 0:
            ctx.warn(f'where("{pattern}", ...) matches no tensor of the models: its second argument is used everywhere',
                     field="expr")  # fmt: skip

    # A plain linear merge runs in numpy on the CPU whatever the device: it is bound by reading and
    # writing host memory, which a GPU would only add copies to; and asking for ctx.device resolves
    # "auto", which imports torch.
    numpy_path = use_numpy and numpy_eligible(tasks)
    device = "cpu"
    if not numpy_path and ctx.device == "cuda":
        import torch

        if torch.cuda.is_available():
            device = "cuda"
    out = Path(ctx.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = [OutSpec(t.name, t.out_dtype, t.shape) for t in tasks]
    writer = ShardedWriter(out, specs, max_shard_bytes, metadata={"expc": "merge"})
    try:
        if numpy_path:
            execute_numpy(tasks, writer, chunk_elems or CHUNK_ELEMS["cpu"], ctx)
        else:
            execute(tasks, writer, device, chunk_elems or CHUNK_ELEMS[device], ctx)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    dtype = _write_metadata(out, operands[0], specs, describe(body), cast_dtype)
    return ModelDir(
        path=out,
        architecture=operands[0].architecture,
        dtype=dtype,
        n_params=sum(t.numel for t in tasks),
    )


def plan_tasks(body: Lin, operands: list[Operand], cast_dtype: str | None) -> tuple[list[Task], dict[str, int]]:
    """One task per tensor of the first operand, in its storage order (sequential reads)."""
    names = [o.by_name() for o in operands]
    hits: dict[str, int] = {}
    tasks = []
    for t in operands[0].tensors:
        if not t.is_float:  # integer / bool buffers are not merged: the first model's are kept
            tasks.append(Task(t.name, t.shape, t.dtype, "copy", source=0, inputs={0: t}))
            continue
        lin = specialize(body, t.name, hits)
        out_dtype = DTYPE_NAMES[cast_dtype] if cast_dtype else t.dtype
        leaf = lin.single
        if isinstance(leaf, OperandRef) and names[leaf.index][t.name].dtype == out_dtype:
            src = names[leaf.index][t.name]
            tasks.append(Task(t.name, t.shape, out_dtype, "copy", source=leaf.index, inputs={leaf.index: src}))
            continue
        kind = "chunk" if is_elementwise(lin) else "whole"
        inputs = {i: names[i][t.name] for i in sorted(lin.leaves())}
        tasks.append(Task(t.name, t.shape, out_dtype, kind, lin=lin, inputs=inputs))
    return tasks, hits


def numpy_eligible(tasks: list[Task]) -> bool:
    """True when every computed tensor is a linear combination of plain operands (no kernel call, no
    product) read and written in a dtype numpy has (float32, float16); copies are bytes either way."""
    for t in tasks:
        if t.kind == "copy":
            continue
        if t.kind != "chunk" or t.lin is None or t.out_dtype not in NUMPY_FLOATS:
            return False
        if not all(isinstance(a, OperandRef) for a, _ in t.lin.terms):
            return False
        if not all(info.dtype in NUMPY_FLOATS for info in t.inputs.values()):
            return False
    return True


# ------------------------------------------------------------------------------------------- execute


def _as_bytes(t: torch.Tensor):
    import torch

    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    elif t.dtype == torch.bool:
        t = t.view(torch.uint8)
    return t.numpy()


def execute(tasks: list[Task], writer: ShardedWriter, device: str, chunk_elems: int, ctx) -> None:
    import torch

    scratch = _Scratch(chunk_elems, device)

    def compute(item: Item):
        out = _compute(item, device, scratch)
        if not _all_finite(out):
            not_finite(item.task.name, int((~torch.isfinite(out)).sum()))
        return _as_bytes(out.cpu() if out.device.type != "cpu" else out)

    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(max(1, min(threads, len(os.sched_getaffinity(0)) - 1)))
    try:
        stream(tasks, writer, Reader(tasks, chunk_elems, pin=(device == "cuda")), ctx, compute,
                scratch.rotate, lambda raw: raw.numpy())
    finally:
        torch.set_num_threads(threads)


class _Scratch:
    """Reusable result buffers for chunks (fresh allocations would page-fault on every chunk), in a
    ring of RING slots: a chunk handed to the writer thread is not overwritten until the writer's
    queue (WRITE_DEPTH), the one it is writing and the one being computed have all moved on."""

    RING = WRITE_DEPTH + 2

    def __init__(self, chunk_elems: int, device: str):
        self.n, self.device = chunk_elems, device
        self.slot = 0
        self.bufs: dict[tuple[int, torch.dtype], torch.Tensor] = {}

    def get(self, dtype: torch.dtype, n: int) -> torch.Tensor:
        import torch

        buf = self.bufs.get((self.slot, dtype))
        if buf is None:
            buf = self.bufs[(self.slot, dtype)] = torch.empty(self.n, dtype=dtype, device=self.device)
        return buf[:n]

    def rotate(self) -> None:
        self.slot = (self.slot + 1) % self.RING


def _all_finite(t: torch.Tensor) -> bool:
    import torch

    # A finite sum proves every element finite (inf and NaN propagate); only otherwise check each.
    if torch.isfinite(t.sum(dtype=torch.float32)):
        return True
    return bool(torch.isfinite(t).all())


def _compute(item: Item, device: str, scratch: _Scratch | None = None) -> torch.Tensor:
    import torch

    from expc.runtime.merge.compile import compile_lin

    TORCH_DTYPES = _torch_dtypes()
    t = item.task
    out_dtype = TORCH_DTYPES[t.out_dtype]
    shape = t.shape if t.kind == "whole" else (item.stop - item.start,)
    chunked = t.kind == "chunk" and scratch is not None
    x = {}
    for j, raw in item.raw.items():
        v = raw.view(TORCH_DTYPES[t.inputs[j].dtype]).view(shape)
        if device != "cpu":
            v = v.to(device, non_blocking=True)
        x[j] = v if v.dtype == torch.float32 else v.float()
    if not t.lin.terms:  # everything cancelled: a constant tensor
        out = torch.full(shape, t.lin.const, dtype=torch.float32, device=device)
    else:
        try:
            acc = scratch.get(torch.float32, shape[0]) if chunked else None
            out = compile_lin(t.lin)(x, t.name, out=acc)
        except ValueError as e:
            raise OpError(f"tensor {t.name!r}: {e}", field="expr") from None
    if out_dtype == torch.float32:
        return out
    return scratch.get(out_dtype, shape[0]).copy_(out) if chunked else out.to(out_dtype)


# ------------------------------------------------------------------------------ the numpy (torch-free) path


def execute_numpy(tasks: list[Task], writer: ShardedWriter, chunk_elems: int, ctx) -> None:
    """`execute` for plain linear merges (see numpy_eligible): the same reader and writer threads,
    each chunk computed in float32 with numpy into a ring of reusable buffers."""
    scratch = _NpScratch(chunk_elems)

    def compute(item: Item):
        out = _compute_numpy(item, scratch)
        if not _np_all_finite(out):
            not_finite(item.task.name, int((~np.isfinite(out)).sum()))
        return out.view(np.int16) if out.dtype == np.float16 else out

    with np.errstate(over="ignore", invalid="ignore"):  # non-finite results are reported by compute
        stream(tasks, writer, Reader(tasks, chunk_elems, pin=False, use_numpy=True), ctx, compute,
                scratch.rotate, lambda raw: raw)


class _NpScratch:
    """_Scratch for numpy arrays: result buffers in a ring the writer thread has moved past, and one
    temporary (never handed to the writer) for the scaled operand."""

    RING = WRITE_DEPTH + 2

    def __init__(self, chunk_elems: int):
        self.n = chunk_elems
        self.slot = 0
        self.bufs: dict[tuple[int, Any], np.ndarray] = {}

    def get(self, dtype, n: int, slot: int | None = None) -> np.ndarray:
        key = (self.slot if slot is None else slot, np.dtype(dtype))
        buf = self.bufs.get(key)
        if buf is None or buf.size < n:
            buf = self.bufs[key] = np.empty(max(self.n, n), dtype=dtype)
        return buf[:n]

    def temp(self, n: int) -> np.ndarray:
        return self.get(np.float32, n, slot=-1)

    def rotate(self) -> None:
        self.slot = (self.slot + 1) % self.RING


def _np_all_finite(a: np.ndarray) -> bool:
    if np.isfinite(a.sum(dtype=np.float32)):
        return True
    return bool(np.isfinite(a).all())


def _compute_numpy(item: Item, scratch: _NpScratch) -> np.ndarray:
    """One chunk of a linear combination `sum(k * x_i) + const`, accumulated in float32."""
    t = item.task
    n = item.stop - item.start
    out_dtype = NUMPY_FLOATS[t.out_dtype]
    x = {j: raw.view(NUMPY_FLOATS[t.inputs[j].dtype]) for j, raw in item.raw.items()}
    if not t.lin.terms:  # everything cancelled: a constant tensor
        acc = scratch.get(np.float32, n)
        acc.fill(t.lin.const)
    else:
        (a0, k0), rest = t.lin.terms[0], t.lin.terms[1:]
        acc = scratch.get(np.float32, n)
        np.multiply(x[a0.index], np.float32(k0), out=acc, dtype=np.float32)
        if rest:
            tmp = scratch.temp(n)
            for a, k in rest:
                np.multiply(x[a.index], np.float32(k), out=tmp, dtype=np.float32)
                np.add(acc, tmp, out=acc)
        if t.lin.const:
            np.add(acc, np.float32(t.lin.const), out=acc)
    if out_dtype is np.float32:
        return acc
    out = scratch.get(out_dtype, n)
    out[...] = acc
    return out


# ----------------------------------------------------------------------------------------- metadata


def _write_metadata(out: Path, first: Operand, specs: list[OutSpec], expression: str, cast_dtype) -> str:
    """config.json (dtype updated), tokenizer and generation files of the first operand, merge.json."""
    counts = Counter(s.dtype for s in specs if s.dtype in DTYPE_OF_ST)
    dtype = DTYPE_OF_ST[counts.most_common(1)[0][0]] if counts else "float32"
    config = dict(first.config)
    keys = [k for k in ("torch_dtype", "dtype") if k in config] or ["torch_dtype"]
    for k in keys:
        config[k] = dtype
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for p in sorted(first.path.iterdir()):
        if not p.is_file() or p.name in ("config.json", INDEX_NAME, "merge.json") or p.suffix in WEIGHT_SUFFIXES:
            continue
        shutil.copyfile(p, out / p.name)
    (out / "merge.json").write_text(
        json.dumps({"expression": expression, "dtype": cast_dtype or "as the first model"}, indent=2) + "\n"
    )
    return dtype
