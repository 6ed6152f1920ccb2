"""Checkpoints of a POET run: JSON for the structure, safetensors for the arrays (no pickle).

Layout under the node's work_dir: `ckpt-<iteration>/state.json` + `ckpt-<iteration>/arrays.safetensors`,
and `latest`, a one-line file naming the complete checkpoint directory. `latest` is replaced atomically
only after both files are written, so a kill at any moment leaves a usable checkpoint (or none).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from expc.runtime.poet.es import Adam
from expc.runtime.poet.loop import EnvRecord, Pair, State

FORMAT = 1


def save(st: State, work_dir: Path, fingerprint: str) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    d = work_dir / f"ckpt-{st.iteration:08d}"
    tmp = work_dir / f".tmp-{d.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    arrays = {}
    pairs = []
    for p in st.pairs:
        arrays[f"pair.{p.id}.theta"] = p.theta
        arrays[f"pair.{p.id}.m"] = p.opt.m
        arrays[f"pair.{p.id}.v"] = p.opt.v
        pairs.append({
            "id": p.id, "params": p.params, "created_at": p.created_at, "parent": p.parent, "adam_t": p.opt.t,
            "sigma": p.sigma, "lr": p.lr, "score": p.score, "recent": p.recent,
        })
    for i, th in st.archived_thetas.items():
        arrays[f"archived.{i}.theta"] = th
    body = {
        "format": FORMAT, "fingerprint": fingerprint, "iteration": st.iteration, "next_id": st.next_id,
        "pairs": pairs, "envs": [vars(e) for e in st.envs.values()], "history": st.history,
        "transfers": st.transfers, "pata_cache": st.pata_cache,
    }
    save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}, str(tmp / "arrays.safetensors"))
    (tmp / "state.json").write_text(json.dumps(body))
    shutil.rmtree(d, ignore_errors=True)
    os.replace(tmp, d)
    latest_tmp = work_dir / ".latest.tmp"
    latest_tmp.write_text(d.name)
    os.replace(latest_tmp, work_dir / "latest")
    for old in work_dir.glob("ckpt-*"):
        if old != d:
            shutil.rmtree(old, ignore_errors=True)
    return d


def load(work_dir: Path, fingerprint: str) -> State | None:
    """The last complete checkpoint of a run with this fingerprint, or None."""
    latest = work_dir / "latest"
    if not latest.is_file():
        return None
    d = work_dir / latest.read_text().strip()
    try:
        body = json.loads((d / "state.json").read_text())
        arrays = load_file(str(d / "arrays.safetensors"))
    except (OSError, ValueError):
        return None
    if body.get("format") != FORMAT or body.get("fingerprint") != fingerprint:
        return None
    pairs = [
        Pair(
            p["id"], p["params"], p["created_at"], p["parent"], arrays[f"pair.{p['id']}.theta"],
            Adam(arrays[f"pair.{p['id']}.m"], arrays[f"pair.{p['id']}.v"], p["adam_t"]),
            p["sigma"], p["lr"], p["score"], list(p["recent"]),
        )
        for p in body["pairs"]
    ]
    envs = {e["id"]: EnvRecord(**e) for e in body["envs"]}
    archived = dict(sorted((int(k.split(".")[1]), v) for k, v in arrays.items() if k.startswith("archived.")))
    return State(body["iteration"], body["next_id"], pairs, envs, archived, body["history"], body["transfers"], body["pata_cache"])
