"""Runs the `poet` operator: settings from its params, the loop with checkpoints, then the outputs
(log.json, agents.safetensors, plots) in ctx.out_dir."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from expc.runtime.api import OpError
from expc.runtime.ops.poet import SCHEDULES, EsParams, EveryParams, MlpParams, ParamsNoveltyParams, PataEcParams
from expc.runtime.poet import checkpoint
from expc.runtime.poet.annecs import annecs_curve
from expc.runtime.poet.envs import EnvConfigError, make_env
from expc.runtime.poet.loop import Poet, State
from expc.runtime.poet.policy import action_spec
from expc.runtime.poet.spec import PoetSettings
from expc.runtime.poet.workers import RolloutPool


def settings_from(p, seed: int) -> PoetSettings:
    """The settings of a run from the poet operator's params, whose inline values arrive built."""
    criterion = (float(p.criterion[0]), float(p.criterion[1]))
    return PoetSettings(
        env=p.env,
        agent=p.agent or MlpParams(),
        es=p.es or EsParams(),
        variant=p.variant,
        iterations=p.iterations,
        mutate=schedule(p.mutate, "mutate"),
        criterion=criterion,
        repro_threshold=float(p.repro_threshold),
        solved=float(p.solved),
        transfer=schedule(p.transfer, "transfer"),
        novelty=novelty(p.novelty, p.variant, criterion),
        archive=p.archive,
        checkpoint=schedule(p.checkpoint, "checkpoint"),
        seed=seed,
    )


def schedule(v: EveryParams | None, use: str) -> EveryParams:
    """The schedule of one use (mutate, transfer, checkpoint): its default when left out, and the
    per-use settings an every(...) leaves out taken from that default."""
    default = SCHEDULES[use]
    if v is None:
        return default
    left_out = {k: x for k, x in default if x is not None and getattr(v, k) is None}
    return v.model_copy(update=left_out)


def novelty(v, variant: str, criterion: tuple[float, float]) -> ParamsNoveltyParams | PataEcParams:
    """The novelty measure: by variant when left out (enhanced: PATA-EC); PATA-EC clips to the
    minimal criterion unless told otherwise."""
    if v is None:
        v = PataEcParams() if variant == "enhanced" else ParamsNoveltyParams()
    if isinstance(v, PataEcParams) and v.clip is None:
        v = v.model_copy(update={"clip": list(criterion)})
    return v


def settings_json(s: PoetSettings) -> dict:
    """The settings as JSON (in log.json, and hashed into the fingerprint a checkpoint must match)."""
    def value(v):  # settings left out (None: sizes inferred, per-use settings of another schedule) are absent
        if isinstance(v, (ParamsNoveltyParams, PataEcParams)):
            return {"kind": v.kind, **v.model_dump(mode="json", exclude_none=True)}
        if isinstance(v, BaseModel):
            return v.model_dump(mode="json", exclude_none=True)
        return asdict(v) if is_dataclass(v) else v

    return json.loads(json.dumps({f.name: value(getattr(s, f.name)) for f in fields(s)}, default=str))


def agent_json(s: PoetSettings) -> dict:
    """The agent's layer sizes, inferred from the environment's spaces where not given."""
    try:
        env = make_env(s.env.config(s.env.initial()))
    except EnvConfigError as e:
        raise OpError(str(e), field="env") from None
    try:
        obs_shape = env.observation_space.shape
        if not obs_shape:
            raise OpError(f"{s.env.id}: only vector observations are supported, got {env.observation_space}", field="env")
        inputs = int(np.prod(obs_shape))
        try:
            action, outputs = action_spec(env.action_space)
        except ValueError as e:
            raise OpError(str(e), field="env") from None
    finally:
        env.close()
    a = s.agent.for_agent()  # POET's defaults: hidden [40, 40], tanh
    if a.activation not in ("tanh", "relu"):
        raise OpError(f"mlp(activation = \"{a.activation}\"): POET agents use tanh or relu", field="agent")
    if a.dropout:
        raise OpError(f"mlp(dropout = {a.dropout}): POET agents have no dropout", field="agent")
    if a.inputs is not None and a.inputs != inputs:
        raise OpError(f"mlp(inputs = {a.inputs}) but {s.env.id} observations have {inputs} numbers", field="agent")
    if a.outputs is not None and a.outputs != outputs:
        raise OpError(f"mlp(outputs = {a.outputs}) but {s.env.id} actions need {outputs}", field="agent")
    return {"inputs": inputs, "hidden": list(a.hidden), "outputs": outputs, "activation": a.activation, "action": action}


def fingerprint(s: PoetSettings, agent: dict) -> str:
    body = json.dumps({"settings": settings_json(s), "agent": agent}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def run_poet(p, ctx) -> dict:
    seed = ctx.seed if p.seed is None else p.seed
    s = settings_from(p, seed)
    agent = agent_json(s)
    fp = fingerprint(s, agent)
    work = Path(ctx.work_dir)
    with RolloutPool(ctx.workers, ctx.backend, ctx.address) as ex:
        poet = Poet(s, agent, ex)
        st = checkpoint.load(work, fp) or poet.new_state()
        advance = ctx.progress(s.iterations, "poet")
        if st.iteration:
            advance(st.iteration)
        while st.iteration < s.iterations:
            rec = poet.iterate(st)
            it = rec["iteration"]
            ctx.log("annecs", rec["annecs"], step=it)
            ctx.log("active", len(st.pairs), step=it)
            ctx.log("best_score", max(rec["scores"].values()), step=it)
            ctx.log("transfers", len(rec["transfers"]), step=it)
            ctx.log("admitted", len(rec["admitted"]), step=it)
            if st.iteration % s.checkpoint.n == 0 or st.iteration == s.iterations:
                checkpoint.save(st, work, fp)
            advance(1)
            ctx.check_cancelled()
        ex.close()
    return write_outputs(st, s, agent, Path(ctx.out_dir))


def write_outputs(st: State, s: PoetSettings, agent: dict, out: Path) -> dict:
    from safetensors.numpy import save_file

    from expc.runtime.poet.plots import write_plots

    out.mkdir(parents=True, exist_ok=True)
    curve = annecs_curve(st.history, s.solved)
    envs = [dict(vars(e)) for e in st.envs.values()]
    log = {
        "settings": settings_json(s),
        "agent": agent,
        "annecs": curve[-1] if curve else 0,
        "annecs_per_iteration": curve,
        "transfers": st.transfers,
        "envs": envs,
        "history": st.history,
    }
    (out / "log.json").write_text(json.dumps(log))
    tensors = {f"env{p.id}": np.ascontiguousarray(p.theta, dtype=np.float32) for p in st.pairs}
    tensors.update({f"archived.env{i}": np.ascontiguousarray(t, dtype=np.float32) for i, t in st.archived_thetas.items()})
    save_file(tensors, str(out / "agents.safetensors"), metadata={"agent": json.dumps(agent)})
    coords = [s.env.vector(e["params"]).tolist() for e in envs]
    names = [m.name if m.kind == "scalar" else f"{m.name}[{j}]" for m in s.env.mutables for j in ((0,) if m.kind == "scalar" else (0, 1))]
    plots = write_plots(out, st.history, envs, coords, names, s.solved, curve)
    pairs = [{"id": p.id, "params": p.params, "score": p.score, "created_at": p.created_at, "parent": p.parent} for p in st.pairs]
    archive = [{k: e[k] for k in ("id", "params", "created_at", "parent", "archived_at", "best", "solved_at")} for e in envs]
    return {
        "annecs": log["annecs"], "iterations": st.iteration, "transfers": st.transfers, "solved": s.solved,
        "pairs": pairs, "archive": archive, "plots": plots,
    }
