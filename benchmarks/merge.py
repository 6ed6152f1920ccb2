"""Merge throughput and memory vs a streaming-copy bound.

    python benchmarks/merge.py [--sizes 50,1000] [--methods] [--repeat 3] [--keep DIR]

For each size (MB of float32 weights per model) it writes three random models as sharded safetensors
(no transformers needed), reads them once so they sit in the page cache, then runs, each in a fresh
subprocess so that peak RSS of one size does not leak into the other:

  merge  expc's engine on  base + 0.5*(m1 - base) + 0.3*(m2 - base)   (folded to 0.2/0.5/0.3)
  copy   the bandwidth bound: the same bytes through the same pipeline with numpy (a reader thread
         reads every input tensor once in 4 MiB chunks with os.preadv; the main thread np.copyto's
         one of them to a ring of output buffers; a writer thread writes them out); on a GPU the
         chunks also go host -> device -> host through pinned memory (the device copy bound)

Each run starts after os.sync(), and copy and merge runs alternate, so that background writeback of
the generated models or of an earlier run's output does not land on one side only.

Throughput counts bytes read + bytes written (4x the model size). Prints one table. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from expc.runtime.merge.safetensors_io import OutSpec, ShardedWriter, model_tensors, read_into

MB = 1024 * 1024
DEM = {
    "op": "add",
    "args": [
        {"op": "add", "args": [{"model": 0}, {"op": "mul", "args": [0.5, {"op": "sub", "args": [{"model": 1}, {"model": 0}]}]}]},
        {"op": "mul", "args": [0.3, {"op": "sub", "args": [{"model": 2}, {"model": 0}]}]},
    ],
}  # fmt: skip
METHODS = {
    "ties": {"op": "call", "name": "ties", "args": {"base": {"model": 0}, "models": [{"model": 1}, {"model": 2}],
             "weights": [0.5, 0.5], "density": 0.5}},
    "dare": {"op": "call", "name": "dare", "args": {"base": {"model": 0}, "models": [{"model": 1}, {"model": 2}],
             "weights": [0.5, 0.5], "density": 0.5}},
    "slerp": {"op": "call", "name": "slerp", "args": {"a": {"model": 1}, "b": {"model": 2}, "t": 0.4}},
}  # fmt: skip


def layout(size_mb: int) -> list[OutSpec]:
    """A transformer-like set of tensors totalling about size_mb MB of float32."""
    hidden = 512 if size_mb < 200 else 2048
    vocab = 8192 if size_mb < 200 else 32000
    specs = [OutSpec("embed.weight", "F32", (vocab, hidden))]
    total = vocab * hidden * 4
    i = 0
    while total < size_mb * MB:
        for name, shape in (("attn.qkv", (3 * hidden, hidden)), ("attn.out", (hidden, hidden)),
                            ("mlp.up", (4 * hidden, hidden)), ("mlp.down", (hidden, 4 * hidden)),
                            ("norm", (hidden,))):  # fmt: skip
            specs.append(OutSpec(f"layers.{i}.{name}.weight", "F32", shape))
            total += specs[-1].nbytes
        i += 1
    return specs


def write_model(path: Path, specs: list[OutSpec], seed: int) -> None:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["BenchModel"], "model_type": "bench"}))
    rng = np.random.default_rng(seed)
    w = ShardedWriter(path, specs, max_shard_bytes=400 * MB)
    for s in specs:
        w.write(s.name, (rng.standard_normal(s.shape, dtype=np.float32) * 0.02).reshape(-1))
    w.close()


def warm(path: Path) -> None:
    for f in path.iterdir():
        with open(f, "rb") as fh:
            while fh.read(64 * MB):
                pass


# ------------------------------------------------------------------------------------------- workers


class _Ctx:
    def __init__(self, out: Path, device: str):
        self.out_dir, self.work_dir, self.device = out, out, device
        self.node, self.key, self.dtype, self.seed, self.workers, self.backend = "bench", "0", "float32", 0, 1, "local"

    def warn(self, message, field=None):
        print("warning:", message, file=sys.stderr)

    def progress(self, total, description, unit="step"):
        return lambda n: None

    def check_cancelled(self):
        pass

    def log(self, *a, **k):
        pass

    def operator(self, name):
        from expc.runtime.registry import load_registry

        return load_registry().get(name)


def worker_merge(models: list[Path], out: Path, device: str, expr: dict) -> float:
    from expc.runtime.merge.engine import run_algebra

    t = time.perf_counter()
    run_algebra(models, expr, _Ctx(out, device))
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - t


def worker_copy(models: list[Path], out: Path, device: str) -> float:
    """The same byte traffic and the same pipeline as the engine (a reader thread, a ring of
    buffers, the main thread writing) with a plain copy instead of the merge arithmetic."""
    import queue
    import threading

    chunk = 4 * MB if device == "cpu" else 64 * MB
    tensors = [{t.name: t for t in model_tensors(m)} for m in models]
    order = model_tensors(models[0])
    depth = 2
    if device == "cuda":
        import torch

        ring = [[torch.empty(chunk, dtype=torch.uint8).pin_memory() for _ in models] for _ in range(depth + 2)]
        outpin = torch.empty(chunk, dtype=torch.uint8).pin_memory()
        outbuf = outpin.numpy()
    else:
        ring = [[np.empty(chunk, dtype=np.uint8) for _ in models] for _ in range(depth + 2)]
        outbuf = np.empty(chunk, dtype=np.uint8)
    q: queue.Queue = queue.Queue(maxsize=depth)

    def reader():
        fds = {}
        k = 0
        for ref in order:
            for s in range(0, ref.nbytes, chunk):
                n = min(chunk, ref.nbytes - s)
                slot = ring[k % len(ring)]
                for j, tm in enumerate(tensors):
                    info = tm[ref.name]
                    fd = fds.get(info.file) or fds.setdefault(info.file, os.open(info.file, os.O_RDONLY))
                    buf = slot[j].numpy() if device == "cuda" else slot[j]
                    read_into(fd, buf[:n], info.offset + s)
                q.put((slot, n))
                k += 1
        q.put(None)
        for fd in fds.values():
            os.close(fd)

    # Like the engine, a writer thread writes while the main thread copies the next chunk, from a
    # ring of output buffers (so the bound has the same three-stage pipeline: read | copy | write).
    wq: queue.Queue = queue.Queue(maxsize=depth)
    outs = [outbuf] + [(torch.empty(chunk, dtype=torch.uint8).pin_memory().numpy() if device == "cuda"
                        else np.empty(chunk, dtype=np.uint8)) for _ in range(depth + 1)]

    def writer(f):
        while (data := wq.get()) is not None:
            f.write(data)

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    with open(out / "copy.bin", "wb") as f:
        wt = threading.Thread(target=writer, args=(f,), daemon=True)
        wt.start()
        k = 0
        while (item := q.get()) is not None:
            slot, n = item
            ob = outs[k % len(outs)]
            if device == "cuda":
                dev = [b[:n].to("cuda", non_blocking=True) for b in slot]
                torch.from_numpy(ob[:n]).copy_(dev[0], non_blocking=True)
                torch.cuda.synchronize()
            else:
                np.copyto(ob[:n], slot[0][:n])
            wq.put(ob[:n])
            k += 1
        wq.put(None)
        wt.join()
    th.join()
    return time.perf_counter() - t0


def _best(runs: list[dict]) -> dict:
    """The fastest run (the least disturbed by other processes); the highest peak RSS."""
    return {"wall": min(r["wall"] for r in runs), "rss_mb": max(r["rss_mb"] for r in runs)}


def run_worker(kind: str, models: list[Path], out: Path, device: str, expr: str = "dem") -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--device", device, "--out", str(out), "--expr", expr,
           *map(str, models)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"worker {kind} failed:\n{res.stderr}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def worker_main(a) -> None:
    models = [Path(m) for m in a.models]
    expr = DEM if a.expr == "dem" else METHODS[a.expr]
    if a.worker == "merge":
        wall = worker_merge(models, Path(a.out), a.device, expr)
    else:
        wall = worker_copy(models, Path(a.out), a.device)
    rss = _peak_rss_mb()
    print(json.dumps({"wall": wall, "rss_mb": rss}))


def _peak_rss_mb() -> float:
    # VmHWM is this process's own peak (ru_maxrss would carry the parent's over fork + exec).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="50,1000", help="model sizes in MB, comma separated")
    ap.add_argument("--methods", action="store_true", help="also time ties/dare/slerp at the smallest size")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is reported")
    ap.add_argument("--keep", default=None, help="generate models under this directory (default: a temp dir)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--expr", default="dem", help=argparse.SUPPRESS)
    ap.add_argument("models", nargs="*", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker_main(a)
    device = a.device
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    root = Path(a.keep or tempfile.mkdtemp(prefix="expc-merge-bench-"))
    rows = []
    try:
        for size in [int(s) for s in a.sizes.split(",")]:
            specs = layout(size)
            nbytes = sum(s.nbytes for s in specs)
            models = [root / f"{size}mb" / f"m{i}" for i in range(3)]
            for i, m in enumerate(models):
                if not m.exists():
                    write_model(m, specs, seed=i)
                warm(m)
            exprs = ["dem"] + (list(METHODS) if a.methods and size == min(int(s) for s in a.sizes.split(",")) else [])
            # Alternate copy and merge runs, each after os.sync(): background writeback of the models
            # just generated (or of an earlier run's output) must not land on one side only.
            runs: dict[str, list[dict]] = {k: [] for k in ["copy", *exprs]}
            for _ in range(a.repeat):
                for k in runs:
                    os.sync()
                    runs[k].append(run_worker("copy", models, root / "out", device) if k == "copy"
                                   else run_worker("merge", models, root / "out", device, k))
            copy = _best(runs["copy"])
            for e in exprs:
                inputs = 2 if e == "slerp" else 3
                rows.append((size, nbytes, e, _best(runs[e]), copy, (inputs + 1) * nbytes))
            if not a.keep:
                shutil.rmtree(root / f"{size}mb")
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"device: {device}" + (f" ({_gpu_name()})" if device == "cuda" else f" ({os.cpu_count()} CPU cores)"))
    head = ("model", "expr", "merge s", "merge GB/s", "copy s", "copy GB/s", "ratio", "merge RSS MB", "copy RSS MB")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for size, nbytes, e, merge, copy, moved in rows:
        gm, gc = moved / merge["wall"] / 1e9, moved / copy["wall"] / 1e9
        print(
            f"| {nbytes / MB:.0f} MB | {e} | {merge['wall']:.2f} | {gm:.2f} | {copy['wall']:.2f} | {gc:.2f} | "
            f"{gm / gc:.2f} | {merge['rss_mb']:.0f} | {copy['rss_mb']:.0f} |"
        )


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


if __name__ == "__main__":
    main()
