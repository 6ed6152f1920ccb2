"""One `finetune` operator call versus the equivalent hand-written PyTorch loop.

Same model directory, same data, same steps, same optimizer/schedule/clipping/seed; both load the
model from its directory, tokenize, train and save it. The two runs alternate (repeats); the table
shows medians of wall time and of process CPU time (steadier on a shared machine). The hand loop's
final weights are checked to be bit-identical to the operator's, so both did the same computation.
Goal: ratio <= 1.05.

    .venv/bin/python benchmarks/train_overhead.py [--steps 200] [--layers 2] [--width 64] ...
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _opctx import OpContext, run  # noqa: E402


def hand_loop(model_dir: Path, examples: list[str], out: Path, a) -> None:
    """What a researcher would write by hand (deliberately not sharing code with expc.runtime.train)."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    lm = AutoModelForCausalLM.from_pretrained(str(model_dir)).train()
    stream = torch.tensor(list(("\n".join(examples) + "\n").encode()), dtype=torch.int64)
    gen = torch.Generator().manual_seed(a.seed)
    torch.manual_seed(a.seed)
    opt = torch.optim.AdamW(lm.parameters(), lr=a.lr, weight_decay=0.0)
    offsets = torch.arange(a.context + 1)
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * step / a.steps))
        starts = torch.randint(0, stream.numel() - a.context, (a.batch,), generator=gen)
        w = stream[starts[:, None] + offsets]
        logits = lm(input_ids=w[:, :-1]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
    lm.save_pretrained(str(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    import torch
    from safetensors.torch import load_file

    from expc.runtime.ops import data as D
    from expc.runtime.ops import models as M
    from expc.runtime.ops import train as T

    root = Path(tempfile.mkdtemp(prefix="expc-bench-"))
    try:
        data = run(D.arithmetic, OpContext(root / "data"), n=5000, digits=3)
        model = run(M.gpt2, OpContext(root / "model"), layers=a.layers, width=a.width, heads=a.heads,
                    context=a.context)
        examples = data.examples()
        load = os.getloadavg()[0]
        op_times, hand_times, op_cpu, hand_cpu = [], [], [], []
        for r in range(-1, a.repeats):  # r = -1: warm-up of both (imports, allocator), not timed
            ctx = OpContext(root / f"op{r}", node="bench")
            t, c = time.perf_counter(), time.process_time()
            tuned = run(T.finetune, ctx, model=model, data=data, steps=a.steps, lr=a.lr, batch=a.batch,
                        context=a.context, seed=a.seed)
            t_op, c_op = time.perf_counter() - t, time.process_time() - c
            threads = torch.get_num_threads()  # the op chose it; the hand loop uses the same
            out = root / f"hand{r}"
            t, c = time.perf_counter(), time.process_time()
            hand_loop(model.path, examples, out, a)
            t_hand, c_hand = time.perf_counter() - t, time.process_time() - c
            if r >= 0:
                op_times.append(t_op)
                hand_times.append(t_hand)
                op_cpu.append(c_op)
                hand_cpu.append(c_hand)
            wa, wb = load_file(str(tuned.path / "model.safetensors")), load_file(str(out / "model.safetensors"))
            assert all(torch.equal(wa[k], wb[k]) for k in wa), "the hand loop computed something else"
        op_t, hand_t = statistics.median(op_times), statistics.median(hand_times)
        op_c, hand_c = statistics.median(op_cpu), statistics.median(hand_cpu)
        print(f"model: gpt2 layers={a.layers} width={a.width} context={a.context}, {model.n_params} params; "
              f"batch={a.batch}, {a.steps} steps, torch threads={threads}; medians of {a.repeats} alternating runs")
        print(f"machine load average before the runs: {load:.2f} on {os.cpu_count()} cores")
        print(f"{'':28}{'wall s':>10}{'steps/s':>10}{'CPU s':>10}")
        print(f"{'hand-written PyTorch loop':28}{hand_t:10.3f}{a.steps / hand_t:10.1f}{hand_c:10.3f}")
        print(f"{'finetune operator':28}{op_t:10.3f}{a.steps / op_t:10.1f}{op_c:10.3f}")
        print(f"{'ratio (operator / hand)':28}{op_t / hand_t:10.3f}{'':10}{op_c / hand_c:10.3f}")
        print("all runs (s): operator " + " ".join(f"{t:.2f}" for t in op_times)
              + "; hand " + " ".join(f"{t:.2f}" for t in hand_times))
        print("final weights: bit-identical")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
