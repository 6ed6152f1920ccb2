"""One `fit` operator call versus the equivalent hand-written PyTorch loop, on the same network and batches.

Both read the same `tensors` data (digits, 1,437 training examples), build the same network from the
same seed (so the same initial weights), visit the same batches (the per-epoch permutation `fit`
documents), take the same Adam steps and save the weights; the hand loop's final weights are checked
to be bit-identical to the operator's. The operator additionally logs loss and accuracy every 10
steps and writes a resumable checkpoint every 500 steps (its defaults). Runs alternate, and so does
which of the two goes first; the table shows medians of wall time and of process CPU time (steadier on
a shared machine), and the median and range of the ratios of runs made next to each other. Goal:
ratio <= 1.05.

A second table (`--attacks` runs only it, `--no-attacks` skips it; cheap, so on by default):
`attack_success` with pgd(...) against calling torchattacks.PGD directly. One mlp(hidden = [64]) is
trained by `fit` on digits(normalize = true) (the 80% split); all 1,797 images are then attacked in
batches of 512 (the operator's default) with the same eps, steps, step size and random-start seeds,
three ways, alternating: (a) torchattacks.PGD called on the loaded network, counting the flips as
`attack_success` does (clean forward, attack only the correct images, forward the adversarial ones);
(b) expc.runtime.attacks.success.success, the function the operator calls once the classifier and
data are loaded (adds the AttackView wrapper, the seeded fork of torch's RNG and the IOR diagnostics,
one more forward and backward per batch); (c) the `attack_success` operator itself (adds reading the
classifier and the data from disk). All three must flip the same images. Goal: ratio <= 1.1.

    .venv/bin/python benchmarks/fit_overhead.py [--steps 1000] [--repeats 5] [--nets mlp,cnn]
                                                [--attacks | --no-attacks] [--attack-repeats 11]
                                                [--eps 0.15] [--pgd-steps 10]
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

NETS = {
    "mlp": {"$op": "mlp", "hidden": [64]},
    "cnn": {"$op": "cnn", "channels": [16, 32], "hidden": [64]},
}


def hand_net(kind: str, seed: int):
    """The same layers, created in the same order from the same seed (deliberately not expc's code)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(seed)
    if kind == "mlp":
        hidden, head = nn.Linear(64, 64), nn.Linear(64, 10)

        def forward(x):
            return head(F.relu(hidden((x * (1 / 16)).flatten(1))))

        modules = nn.ModuleDict({"hidden": hidden, "head": head})
    else:
        c1, c2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
        hidden, head = nn.Linear(32 * 2 * 2, 64), nn.Linear(64, 10)

        def forward(x):
            x = F.max_pool2d(F.relu(c1(x * (1 / 16))), 2)
            x = F.max_pool2d(F.relu(c2(x)), 2)
            return head(F.relu(hidden(x.flatten(1))))

        modules = nn.ModuleDict({"c1": c1, "c2": c2, "hidden": hidden, "head": head})
    return modules, forward


def _hand_name(name: str) -> str:
    """The hand-written network's name of one of fit's tensors."""
    for ours, theirs in (("conv.0.", "c1."), ("conv.1.", "c2."), ("hidden.0.", "hidden.")):
        if name.startswith(ours):
            return theirs + name[len(ours):]
    return name


def hand_loop(kind: str, data, out: Path, a) -> None:
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    X, y = (torch.from_numpy(v) for v in data.load())
    modules, forward = hand_net(kind, a.seed)
    opt = torch.optim.Adam(modules.parameters(), lr=a.lr)
    torch.manual_seed(a.seed)
    per_epoch = math.ceil(len(X) / a.batch)
    order = None
    for step in range(a.steps):
        epoch, i = divmod(step, per_epoch)
        if i == 0 or order is None:
            gen = torch.Generator().manual_seed((a.seed * 0x9E3779B97F4A7C15 + epoch) % 2**63)
            order = torch.randperm(len(X), generator=gen)
        idx = order[i * a.batch : (i + 1) * a.batch]
        loss = F.cross_entropy(forward(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in modules.state_dict().items()}, str(out / "model.safetensors"))


def direct_pgd(net, X, y, *, eps: float, alpha: float, steps: int, batch: int) -> int:
    """torchattacks.PGD on the network as it is (digits(normalize = true) is already in [0, 1]), the
    batches, seeds and skip rule of attack_success; the number of images it flips."""
    import torch
    import torchattacks

    attack = torchattacks.PGD(net, eps=eps, alpha=alpha, steps=steps, random_start=True)
    flipped = 0
    for b, i in enumerate(range(0, len(X), batch)):
        xb, yb = X[i : i + batch], y[i : i + batch]
        with torch.no_grad():
            right = net(xb).argmax(1) == yb
        xb, yb = xb[right], yb[right]
        # attack_success's seed of batch b (seed 0, experiment seed 0), on the CPU generator as the
        # operator seeds it (torch.manual_seed would add ~0.14 ms a call queueing seeds for CUDA)
        torch.default_generator.manual_seed(b)
        adv = attack(xb, yb)
        with torch.no_grad():
            flipped += int((net(adv).argmax(1) != yb).sum())
    return flipped


def paired(subject: list[float], base: list[float]) -> str:
    """The median and the range of the per-repeat ratios (each run against the baseline run next to
    it): steadier than a ratio of medians when the machine's load changes during the runs."""
    r = sorted(x / y for x, y in zip(subject, base))
    return f"{statistics.median(r):.3f} [{r[0]:.2f}-{r[-1]:.2f}]"


def attack_table(a, reg, root: Path) -> None:
    import torch

    from expc.runtime.attacks.success import success
    from expc.runtime.nets.load import load_classifier
    from expc.runtime.ops import attacks as ATT
    from expc.runtime.ops import data as D
    from expc.runtime.ops import fit as FIT
    from expc.runtime.ops import tensors as TS

    digits = run(TS.digits, OpContext(root / "a-digits"), normalize=True)
    train = run(D.split, OpContext(root / "a-split"), data=digits, test=0.2, seed=0)["train"]
    ctx = OpContext(root / "a-fit", node="bench")
    clf = FIT.fit.fn(reg.built(FIT.fit.params(model=NETS["mlp"], data=train, epochs=6, seed=a.seed,
                                              optimizer={"$op": "adam", "lr": 3e-3}), ctx), ctx)
    pgd = {"$op": "pgd", "eps": a.eps, "steps": a.pgd_steps}
    spec = reg.built(ATT.attack_success.params(model=clf, data=digits, attack=pgd), ctx).attack
    assert float(digits.lo) == 0.0 and float(digits.hi) == 1.0
    net, config = load_classifier(clf)
    X, y = (torch.from_numpy(v) for v in digits.load())
    batch = ATT.AttackSuccessParams.model_fields["batch"].default

    def op():
        c = OpContext(root / "a-op", node="bench")
        r = ATT.attack_success.fn(reg.built(ATT.attack_success.params(model=clf, data=digits, attack=pgd), c), c)
        return r["flipped"], r

    def runtime():
        r = success(net, X, y, spec, 0.0, 1.0, classes=int(config["classes"]), batch=batch)
        return r["flipped"], r

    def runtime_plain():
        r = success(net, X, y, spec, 0.0, 1.0, classes=int(config["classes"]), batch=batch, diagnose=False)
        return r["flipped"], r

    def direct():
        return direct_pgd(net, X, y, eps=spec.eps, alpha=spec.step_size, steps=spec.steps, batch=batch), None

    ways = [("torchattacks.PGD, direct", direct), ("expc success() (runtime)", runtime),
            ("attack_success operator", op), ("success(), diagnose = false", runtime_plain)]
    times = {name: ([], []) for name, _ in ways}
    load = os.getloadavg()[0]
    flips, result = set(), None
    for r in range(-1, a.attack_repeats):  # r = -1: warm-up, not timed
        order = ways if r % 2 == 0 else ways[::-1]  # alternate which goes first
        for name, fn in order:
            t, c = time.perf_counter(), time.process_time()
            flipped, res = fn()
            t, c = time.perf_counter() - t, time.process_time() - c
            result = res or result
            flips.add(flipped)
            if r >= 0:
                times[name][0].append(t)
                times[name][1].append(c)
    assert len(flips) == 1, f"the three ways flipped different numbers of images: {flips}"
    n = len(X)
    print(f"\nattack_success with {spec.describe()} (step {spec.step_size:g}) on digits(normalize = true), "
          f"{n:,} images in batches of {batch}, mlp(hidden = [64]) fitted by expc "
          f"(clean accuracy {result['clean_accuracy']:.3f}, ASR {result['asr']:.3f}, same {flips.pop()} images "
          f"flipped by every path); torch threads {torch.get_num_threads()}")
    print(f"medians of {a.attack_repeats} alternating runs; load average before the runs: {load:.2f} on "
          f"{os.cpu_count()} cores; goal: ratio <= 1.1")
    print(f"{'path':28}{'ms':>9}{'images/s':>11}{'ratio':>8}{'CPU ratio':>11}   {'paired ratio [range]':>22}"
          f"   {'paired CPU ratio':>22}")
    base_t, base_c = (statistics.median(v) for v in times[ways[0][0]])
    for name, _ in ways:
        t, c = (statistics.median(v) for v in times[name])
        print(f"{name:28}{1e3 * t:9.1f}{n / t:11,.0f}{t / base_t:8.3f}{c / base_c:11.3f}   "
              f"{paired(times[name][0], times[ways[0][0]][0]):>22}   {paired(times[name][1], times[ways[0][0]][1]):>22}")
    for name, _ in ways:
        print(f"all runs (ms), {name}: " + " ".join(f"{1e3 * t:.1f}" for t in times[name][0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--nets", default="mlp,cnn")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--attacks", action="store_true", help="only the attack_success table")
    which.add_argument("--no-attacks", action="store_true", help="only the fit table")
    ap.add_argument("--attack-repeats", type=int, default=11)
    ap.add_argument("--eps", type=float, default=0.15, help="pgd's eps (a fraction of the range)")
    ap.add_argument("--pgd-steps", type=int, default=10)
    a = ap.parse_args()

    import torch
    from safetensors.torch import load_file

    from expc.runtime.ops import data as D
    from expc.runtime.ops import fit as FIT
    from expc.runtime.ops import tensors as TS
    from expc.runtime.registry import load_registry

    reg = load_registry()
    root = Path(tempfile.mkdtemp(prefix="expc-bench-fit-"))
    rows = []
    try:
        if a.attacks:
            attack_table(a, reg, root)
            return
        digits = run(TS.digits, OpContext(root / "digits"))
        train = run(D.split, OpContext(root / "split"), data=digits, test=0.2, seed=0)["train"]
        load = os.getloadavg()[0]
        for kind in a.nets.split(","):
            op_t, hand_t, op_c, hand_c = [], [], [], []
            for r in range(-1, a.repeats):  # r = -1: warm-up of both, not timed
                ctx = OpContext(root / f"{kind}-op{r}", node="bench")
                params = reg.built(FIT.fit.params(model=NETS[kind], data=train, steps=a.steps, batch=a.batch,
                                                  optimizer={"$op": "adam", "lr": a.lr}, seed=a.seed), ctx)
                out = root / f"{kind}-hand{r}"
                timed = {}

                def op():
                    return FIT.fit.fn(params, ctx)

                def hand():
                    hand_loop(kind, train, out, a)

                # the op first in the warm-up (it sets torch's thread count, the hand loop uses the same),
                # then alternately second and first
                order = [("op", op), ("hand", hand)]
                if r >= 0 and r % 2 == 0:
                    order.reverse()
                for name, fn in order:
                    t, c = time.perf_counter(), time.process_time()
                    value = fn()
                    timed[name] = (time.perf_counter() - t, time.process_time() - c)
                    if name == "op":
                        clf = value
                threads = torch.get_num_threads()
                (t_op, c_op), (t_hand, c_hand) = timed["op"], timed["hand"]
                if r >= 0:
                    op_t.append(t_op)
                    hand_t.append(t_hand)
                    op_c.append(c_op)
                    hand_c.append(c_hand)
                wa = load_file(str(clf.path / "model.safetensors"))
                wb = load_file(str(out / "model.safetensors"))
                assert all(torch.equal(v, wb[_hand_name(k)]) for k, v in wa.items()), \
                    "the hand loop computed something else"
            rows.append((kind, clf.n_params, threads, statistics.median(hand_t), statistics.median(op_t),
                         statistics.median(hand_c), statistics.median(op_c), op_t, hand_t, op_c, hand_c))
        print(f"digits ({train.n:,} training examples of 1x8x8), batch {a.batch}, {a.steps} Adam steps; "
              f"medians of {a.repeats} alternating runs; final weights bit-identical")
        print(f"machine load average before the runs: {load:.2f} on {os.cpu_count()} cores")
        print(f"{'net':6}{'params':>8}{'threads':>8}{'hand s':>9}{'fit s':>9}{'hand ms/step':>14}"
              f"{'fit ms/step':>13}{'ratio':>8}{'CPU ratio':>11}   {'paired ratio [range]':>22}   {'paired CPU ratio':>22}")
        for kind, n, threads, h, o, hc, oc, op_t, hand_t, op_c, hand_c in rows:
            print(f"{kind:6}{n:>8,}{threads:>8}{h:9.3f}{o:9.3f}{1e3 * h / a.steps:14.3f}{1e3 * o / a.steps:13.3f}"
                  f"{o / h:8.3f}{oc / hc:11.3f}   {paired(op_t, hand_t):>22}   {paired(op_c, hand_c):>22}")
        for kind, *_, op_t, hand_t, _, _ in rows:
            print(f"all runs (s), {kind}: fit " + " ".join(f"{t:.2f}" for t in op_t)
                  + "; hand " + " ".join(f"{t:.2f}" for t in hand_t))
        if not a.no_attacks:
            attack_table(a, reg, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
