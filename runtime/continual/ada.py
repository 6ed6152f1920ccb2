"""ADA's pool (Ermis et al. 2022): while the pool has room a task's new adapter joins it; afterwards the
pool adapter that transfers best to the task (LEEP, TransRate or at random) and the new adapter are
distilled into that slot. Functions of a running continual learner (expc.runtime.continual.run.Runner)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from expc.runtime.continual.seeds import generator, seed_of

SCORE_EXAMPLES = 500  # target examples a transferability score reads



def place(run, t: int) -> None:
    """The new adapter joins the pool while it has room; afterwards the pool adapter that transfers
    best to task t (by the method's score) and the new adapter are distilled into that slot."""
    m, body, st = run.method, run.body, run.state
    a = m.adapter
    if len(st.slots) < m.pool:
        s = len(st.slots)
        slot = f"slot{s}"
        body.add_adapter(slot, a.bottleneck, a.at, 0)
        body.load_adapter_state(slot, body.adapter_state("new"))
        body.remove_adapter("new")
        st.slots.append(slot)
        st.adapter_of[t] = slot
        st.choices.append({"task": t, "slot": s, "scores": None, "distilled": False})
        return
    scores = [score(run, s, t) for s in range(len(st.slots))]
    s = int(np.argmax(scores))
    slot = st.slots[s]
    served = [j for j in range(t) if st.adapter_of[j] == slot]
    distill(run, slot, served, t)
    body.remove_adapter("new")
    st.adapter_of[t] = slot
    st.choices.append({"task": t, "slot": s, "scores": scores, "distilled": True, "served": served})

@torch.no_grad()
def score(run, s: int, t: int) -> float:
    from expc.runtime.continual.transfer import leep, transrate

    m, st = run.method, run.state
    if m.score == "random":
        return float(np.random.default_rng(seed_of(run.seed, t, 23)).random(len(st.slots))[s])
    Xtr, ytr, _, _ = run.task(t)
    X, y = Xtr[:SCORE_EXAMPLES], ytr[:SCORE_EXAMPLES]
    slot = st.slots[s]
    run.body.set_adapter(slot)
    feats = run.body.features(X)
    if m.score == "transrate":
        return transrate(feats.double().cpu().numpy(), y.cpu().numpy())
    # each head the slot serves is a source classifier; their mean LEEP (one distribution over the
    # union of their labels would favour the slot serving more tasks: LEEP grows with the labels)
    served = [j for j in range(t) if st.adapter_of[j] == slot]
    ys = y.cpu().numpy()
    return float(np.mean([leep(torch.softmax(st.heads[j](feats).double(), 1).cpu().numpy(), ys,
                               run.stream.classes[t]) for j in served]))

def distill(run, slot: str, served: list[int], t: int) -> None:
    """Train a student adapter (starting from the slot's) so that, under it, the heads of the tasks
    the slot serves give what they give under the slot's adapter, and task t's head what it gives
    under the new adapter: KL divergence of temperature-softened outputs (Hinton et al. 2015),
    times T^2, on task t's training examples (the only data at hand)."""
    d, body, heads = run.method.distill, run.body, run.state.heads
    Xtr = run.task(t)[0]
    body.add_adapter("student", run.method.adapter.bottleneck, run.method.adapter.at, 0)
    body.load_adapter_state("student", body.adapter_state(slot))
    params = body.adapter_parameters("student")
    for q in params:
        q.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=d.lr)
    T = d.temperature
    gen = generator(run.seed, t, 29)
    for step in range(d.steps):
        idx = torch.randint(len(Xtr), (min(d.batch, len(Xtr)),), generator=gen).to(run.device)
        x = Xtr[idx]
        with torch.no_grad():
            body.set_adapter(slot)
            f_old = body.features(x)
            body.set_adapter("new")
            f_new = body.features(x)
            teachers = [heads[j](f_old) for j in served] + [heads[t](f_new)]
        body.set_adapter("student")
        for q in params:
            q.requires_grad_(True)
        f = body.features(x)
        students = [heads[j](f) for j in [*served, t]]
        loss = sum(F.kl_div(F.log_softmax(s / T, 1), F.softmax(te / T, 1), reduction="batchmean")
                   for s, te in zip(students, teachers)) * (T * T) / len(students)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    body.load_adapter_state(slot, body.adapter_state("student"))
    body.remove_adapter("student")
