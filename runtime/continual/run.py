"""The `continual` operator: a method trained task after task on a stream, the accuracy matrix measured
after each task, a checkpoint after each task.

Protocol (task-incremental unless heads = "shared"): every task gets its own linear head on the body's
features, and the task's identity picks that head (and, for adapter methods, its adapter) at test time.
With heads = "shared" (class-incremental) the task is not given: the prediction is the largest logit
over the heads of every task seen so far (each computed under its own adapter), and every method trains
with the cross-entropy over all those classes, like one growing output layer (only the current task's
adapter, head and, for sequential, ewc and replay, the backbone and every head are trained).

Determinism and resuming: task t's batches, adapter initializations and replay draws are seeded by
(seed, t) alone, and after each task the whole state (body weights when the method trains them,
adapters, heads, EWC's Fisher terms, the replay buffer, the matrix rows) is written to the node's work
dir (safetensors + JSON, atomically), so a run killed mid-stream continues from its last finished task
and ends with the same result.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from expc.runtime.api import OpError, node_seed
from expc.runtime.continual import ada, metrics
from expc.runtime.continual.seeds import generator, seed_of
from expc.runtime.continual.bodies import NoLayer, load_body

CHECKPOINT = "continual.json"
FORMAT = 1


class State:
    """Everything a method keeps between tasks (and a checkpoint holds)."""

    def __init__(self):
        self.done = 0
        self.rows: list[list[float | None]] = []
        self.heads = nn.ModuleList()
        self.adapter_of: list[str | None] = []  # task -> the adapter that serves it
        self.slots: list[str] = []  # ada: the pool's adapters
        self.fisher: list[dict[str, torch.Tensor]] = []  # ewc: per task
        self.anchor: list[dict[str, torch.Tensor]] = []
        self.buffer: list[torch.Tensor] = []  # replay: per task, indices into its training examples
        self.choices: list[dict] = []  # ada: per task, the slot and the scores
        self.seconds = 0.0
        self.losses: list[float] = []


class Runner:
    def __init__(self, p, ctx):
        self.p, self.ctx = p, ctx
        self.method = p.method
        self.name = type(self.method).method
        self.stream = p.stream
        self.device = ctx.device
        self.seed = node_seed(p.seed, ctx.seed)
        self.shared = p.heads == "shared"
        self.trains_body = self.name in ("sequential", "ewc", "replay")
        self.offsets = [int(x) for x in np.cumsum([0, *self.stream.classes])[:-1]]
        self._tasks: dict[int, tuple[torch.Tensor, ...]] = {}
        self.body = load_body(p.model, self.device)
        self._check_backbone()
        from expc.runtime.train.fit import threads_for

        threads_for(self.body, ctx.workers)
        for q in self.body.backbone_parameters():
            q.requires_grad_(self.trains_body)
        self.state = State()

    # -- checks -------------------------------------------------------------------------------------

    def _check_backbone(self) -> None:
        body, stream = self.body, self.stream
        if body.kind == "native":
            shape = list(body.net.input_shape)
            if shape != list(stream.shape):
                raise OpError(f"the backbone takes examples of shape {shape}, the stream's tasks have shape "
                              f"{list(stream.shape)}", field="stream")
        else:
            for t in range(stream.n_tasks):
                Xtr, _, Xte, _ = self.task(t)
                bad = body.check_inputs(torch.cat([Xtr, Xte]))
                if bad:
                    raise OpError(f"task {t} ({stream.sources[t]}): {bad}", field="stream")
        adapter = getattr(self.method, "adapter", None)
        if adapter is not None:
            try:
                body.check_at(adapter.at)
            except NoLayer as e:
                raise OpError(str(e), field="method.adapter.at",
                              hint='for mlp/cnn backbones: "hidden", "hidden.0", "conv", ...') from None

    # -- data ---------------------------------------------------------------------------------------

    def task(self, t: int) -> tuple[torch.Tensor, ...]:
        if t not in self._tasks:
            self._tasks[t] = tuple(torch.from_numpy(a).to(self.device) for a in self.stream.task(t))
        return self._tasks[t]

    def batches(self, n: int, t: int, epochs: int):
        per_epoch = math.ceil(n / self.p.batch)
        for e in range(epochs):
            order = torch.randperm(n, generator=generator(self.seed, t, e)).to(self.device)
            for i in range(per_epoch):
                yield order[i * self.p.batch : (i + 1) * self.p.batch]

    # -- the model ------------------------------------------------------------------------------------

    def logits(self, x: torch.Tensor, t: int, upto: int | None = None) -> torch.Tensor:
        """Task t's logits (task mode), or the concatenated logits of tasks 0..upto (shared mode), each
        head under its own adapter."""
        if not self.shared:
            self.body.set_adapter(self.state.adapter_of[t])
            return self.state.heads[t](self.body.features(x))
        upto = t if upto is None else upto
        out, cache = [], {}
        for i in range(upto + 1):
            a = self.state.adapter_of[i]
            if a not in cache:
                self.body.set_adapter(a)
                cache[a] = self.body.features(x)
            out.append(self.state.heads[i](cache[a]))
        return torch.cat(out, 1)

    def target(self, y: torch.Tensor, t: int) -> torch.Tensor:
        return y + self.offsets[t] if self.shared else y

    def optimizer(self, params):
        from expc.runtime.train.optim import build_optimizer, peak_lr, with_lr

        return build_optimizer(with_lr(self.p.optimizer, peak_lr(self.p.optimizer)), params)

    # -- one task -------------------------------------------------------------------------------------

    def train_task(self, t: int) -> None:
        Xtr, ytr, _, _ = self.task(t)
        classes = self.stream.classes[t]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(self.seed, t, 7))
            self.state.heads.append(nn.Linear(self.body.width, classes).to(self.device))
        head = self.state.heads[t]
        if self.name in ("adapters", "ada"):
            a = self.method.adapter
            new = f"task{t}" if self.name == "adapters" else "new"
            self.body.add_adapter(new, a.bottleneck, a.at, seed_of(self.seed, t, 11))
            self.state.adapter_of.append(new)
            params = self.body.adapter_parameters(new) + list(head.parameters())
        else:
            self.state.adapter_of.append(None)
            params = self.body.backbone_parameters() + list(
                (self.state.heads if self.shared else head).parameters())
        for q in params:
            q.requires_grad_(True)
        opt = self.optimizer(params)
        penalty = self._ewc_penalty if self.name == "ewc" and t > 0 else None
        replay = self.name == "replay" and t > 0
        self.body.train()
        last, seen = [], len(self.state.losses)
        for step, idx in enumerate(self.batches(len(Xtr), t, self.p.epochs)):
            loss = F.cross_entropy(self.logits(Xtr[idx], t), self.target(ytr[idx], t))
            if replay:
                loss = loss + self._replay_loss(t, step)
            if penalty is not None:
                loss = loss + penalty()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last.append(loss.detach())
            if len(last) == 20:
                self._finite(torch.stack(last).mean(), t)
                last = []
        if last:
            self._finite(torch.stack(last).mean(), t)
        mine = self.state.losses[seen:]
        self.ctx.log("loss", sum(mine) / len(mine), t + 1)
        self.body.eval()
        if self.name == "ewc":
            self._add_fisher(t)
        elif self.name == "replay":
            pick = torch.randperm(len(Xtr), generator=generator(self.seed, t, 13))[: self.method.per_task]
            self.state.buffer.append(pick.sort().values)
        elif self.name == "ada":
            ada.place(self, t)
        backbone = {id(q) for q in self.body.backbone_parameters()}
        for q in params:
            if id(q) not in backbone or not self.trains_body:
                q.requires_grad_(False)

    def _finite(self, loss: torch.Tensor, t: int) -> None:
        v = float(loss)
        if not math.isfinite(v):
            raise OpError(f"{self.ctx.node}: the training loss is {v} on task {t}", field="optimizer",
                          hint="lower the learning rate")
        self.state.losses.append(v)

    # -- EWC --------------------------------------------------------------------------------------------

    def _add_fisher(self, t: int) -> None:
        """The empirical Fisher diagonal of task t at the weights just trained: squared gradients of each
        example's log-likelihood of its label, averaged over `samples` examples."""
        Xtr, ytr, _, _ = self.task(t)
        pick = torch.randperm(len(Xtr), generator=generator(self.seed, t, 17))[: self.method.samples].to(self.device)
        named = self._backbone_named()
        fisher = {n: torch.zeros_like(q) for n, q in named}
        for i in pick:
            self.body.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.logits(Xtr[i : i + 1], t), self.target(ytr[i : i + 1], t))
            grads = torch.autograd.grad(loss, [q for _, q in named], allow_unused=True)
            for (n, _), g in zip(named, grads):
                if g is not None:
                    fisher[n] += g.detach() ** 2
        self.state.fisher.append({n: f / len(pick) for n, f in fisher.items()})
        self.state.anchor.append({n: q.detach().clone() for n, q in named})

    def _backbone_named(self) -> list[tuple[str, torch.Tensor]]:
        ids = {id(q) for q in self.body.backbone_parameters()}
        return [(n, q) for n, q in self.body.named_parameters() if id(q) in ids]

    def _ewc_penalty(self) -> torch.Tensor:
        params = dict(self.body.named_parameters())
        total = 0.0
        for fisher, anchor in zip(self.state.fisher, self.state.anchor):
            for n, f in fisher.items():
                total = total + (f * (params[n] - anchor[n]) ** 2).sum()
        return 0.5 * self.method.strength * total

    # -- replay -----------------------------------------------------------------------------------------

    def _replay_loss(self, t: int, step: int) -> torch.Tensor:
        """The cross-entropy on a batch drawn from the buffer of tasks 0..t-1, each example through its
        own task's head (shared mode: over every class seen so far)."""
        sizes = [len(b) for b in self.state.buffer]
        total = sum(sizes)
        draw = torch.randint(total, (min(self.p.batch, total),), generator=generator(self.seed, t, 19, step))
        bounds = np.cumsum([0, *sizes])
        losses, count = [], 0
        for j in range(t):
            mine = draw[(draw >= bounds[j]) & (draw < bounds[j + 1])] - int(bounds[j])
            if not len(mine):
                continue
            Xj, yj, _, _ = self.task(j)
            idx = self.state.buffer[j][mine].to(self.device)
            logits = self.logits(Xj[idx], j, upto=t) if self.shared else self.logits(Xj[idx], j)
            losses.append(F.cross_entropy(logits, self.target(yj[idx], j), reduction="sum"))
            count += len(mine)
        return torch.stack(losses).sum() / count

    # -- evaluation -------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, t: int) -> list[float | None]:
        row: list[float | None] = []
        for j in range(self.stream.n_tasks):
            if j > t:
                row.append(None)
                continue
            _, _, Xte, yte = self.task(j)
            hits = 0
            for i in range(0, len(Xte), 1024):
                logits = self.logits(Xte[i : i + 1024], j, upto=t)
                hits += int((logits.argmax(1) == self.target(yte[i : i + 1024], j)).sum())
            row.append(hits / len(Xte))
        return row

    # -- checkpoints ------------------------------------------------------------------------------------

    def _tensors(self) -> dict[str, torch.Tensor]:
        st, body = self.state, self.body
        out = {f"head.{k}": v for k, v in st.heads.state_dict().items()}
        if self.trains_body:
            out.update({f"body.{n}": q for n, q in self._backbone_named()})
        for name in sorted({a for a in st.adapter_of if a is not None}):
            out.update({f"adapter.{name}.{k}": v for k, v in body.adapter_state(name).items()})
        for t, (f, a) in enumerate(zip(st.fisher, st.anchor)):
            out.update({f"fisher.{t}.{n}": v for n, v in f.items()})
            out.update({f"anchor.{t}.{n}": v for n, v in a.items()})
        for t, b in enumerate(st.buffer):
            out[f"buffer.{t}"] = b
        return {k: v.detach().to("cpu").contiguous() for k, v in out.items()}

    def save(self, directory: Path, name: str = "state.safetensors") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (name + ".tmp")
        save_file(self._tensors(), str(tmp))
        os.replace(tmp, directory / name)
        st = self.state
        index = {"format": FORMAT, "done": st.done, "rows": st.rows, "adapter_of": st.adapter_of, "slots": st.slots,
                 "classes": self.stream.classes[: st.done], "choices": st.choices, "seconds": st.seconds,
                 "losses": st.losses, "tensors": name}
        tmp = directory / (CHECKPOINT + ".tmp")
        tmp.write_text(json.dumps(index) + "\n")
        os.replace(tmp, directory / CHECKPOINT)

    def restore(self, directory: Path) -> bool:
        try:
            index = json.loads((directory / CHECKPOINT).read_text())
            if index.get("format") != FORMAT or index["classes"] != self.stream.classes[: index["done"]]:
                return False
            tensors = load_file(str(directory / index["tensors"]))
        except (OSError, ValueError, KeyError):
            return False
        st, body = self.state, self.body
        for t, k in enumerate(index["classes"]):
            st.heads.append(nn.Linear(body.width, k).to(self.device))
        st.heads.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
        if self.trains_body:
            with torch.no_grad():
                for n, q in body.named_parameters():
                    if f"body.{n}" in tensors:
                        q.copy_(tensors[f"body.{n}"])
        a = getattr(self.method, "adapter", None)
        for name in sorted({x for x in index["adapter_of"] if x is not None}):
            body.add_adapter(name, a.bottleneck, a.at, 0)
            prefix = f"adapter.{name}."
            body.load_adapter_state(name, {k[len(prefix):]: v.to(self.device) for k, v in tensors.items()
                                           if k.startswith(prefix)})
            for q in body.adapter_parameters(name):
                q.requires_grad_(False)
        for t in range(index["done"]):
            f = {k.split(".", 2)[2]: v.to(self.device) for k, v in tensors.items() if k.startswith(f"fisher.{t}.")}
            if f:
                st.fisher.append(f)
                st.anchor.append({k.split(".", 2)[2]: v.to(self.device) for k, v in tensors.items()
                                  if k.startswith(f"anchor.{t}.")})
            if f"buffer.{t}" in tensors:
                st.buffer.append(tensors[f"buffer.{t}"])
        st.done, st.rows, st.adapter_of, st.slots = index["done"], index["rows"], index["adapter_of"], index["slots"]
        st.choices, st.seconds, st.losses = index["choices"], index["seconds"], index["losses"]
        return True

    # -- the whole stream -------------------------------------------------------------------------------

    def run(self) -> dict:
        ctx, st = self.ctx, self.state
        T = self.stream.n_tasks
        work = Path(ctx.work_dir) if ctx.work_dir is not None else None
        if work is not None and self.restore(work):
            ctx.log("resumed_at_task", st.done, st.done)
        advance = ctx.progress(T, f"continual {ctx.node}", unit="task")
        if st.done:
            advance(st.done)
        for t in range(st.done, T):
            ctx.check_cancelled()
            started = time.perf_counter()
            self.train_task(t)
            st.rows.append(self.evaluate(t))
            st.done = t + 1
            st.seconds += time.perf_counter() - started
            if work is not None and t + 1 < T:
                self.save(work)  # before logging: a logged task is a saved one
            row = [x for x in st.rows[-1] if x is not None]
            ctx.log("avg_accuracy", sum(row) / len(row), t + 1)
            ctx.log("task_accuracy", st.rows[-1][t], t + 1)
            advance(1)
        return self.result()

    def n_params(self) -> dict:
        st, body = self.state, self.body
        backbone = sum(q.numel() for q in body.backbone_parameters())
        adapters = sorted({a for a in st.adapter_of if a is not None})
        pool = sum(v.numel() for a in adapters for v in body.adapter_state(a).values())
        heads = sum(q.numel() for q in st.heads.parameters())
        out = {"value": backbone + pool + heads, "backbone": backbone, "adapters": pool, "n_adapters": len(adapters),
               "heads": heads}
        if st.fisher:
            out["ewc_terms"] = 2 * sum(v.numel() for f in st.fisher for v in f.values())
        if st.buffer:
            out["buffer_examples"] = sum(len(b) for b in st.buffer)
        return out

    def result(self) -> dict:
        st = self.state
        out_dir = Path(self.ctx.out_dir)
        self.save(out_dir)
        R = st.rows
        adapters = sorted({a for a in st.adapter_of if a is not None})
        cost = max(1, len(adapters)) if self.shared else 1
        acc = metrics.avg_accuracy(R, self.stream.n_test)
        out = {
            "method": self.p.method.describe(), "heads": self.p.heads, "tasks": self.stream.n_tasks,
            "backbone": self.body.kind, "matrix": R, "avg_accuracy": acc["value"], "pooled_accuracy": acc["pooled"],
            "forgetting": metrics.forgetting(R)["value"], "bwt": metrics.bwt(R)["value"],
            "n_params": self.n_params(), "inference_cost": cost, "seconds": st.seconds, "adapter_of": st.adapter_of,
            "choices": st.choices, "sources": self.stream.sources, "plot": "matrix.png",
        }
        import matplotlib.pyplot as plt

        from expc.runtime.continual.plot import matrix_figure

        fig = matrix_figure(out, self.ctx.node)
        fig.savefig(out_dir / "matrix.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        return out


def run_continual(p, ctx) -> dict:
    """The `continual` operator (runtime/ops/continual.py)."""
    return Runner(p, ctx).run()
