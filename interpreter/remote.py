"""Evaluate a node in another process (a local worker or a Ray task) against the same store.

The worker rebuilds the session from a JSON spec (program file, overrides, store, settings) - no
pickled closures - then evaluates the node under the given bindings; finished work lands in the shared
store, so parallel trials reuse each other's upstream results.
"""

from __future__ import annotations

import os
from typing import Any

_sessions: dict[str, Any] = {}


def _session(spec: dict):
    from expc.interpreter.session import Session
    from expc.interpreter.symbolic import canonical

    k = canonical({k: spec.get(k) for k in ("file", "overrides", "cache", "settings")})
    s = _sessions.get(k)
    if s is None:
        s = Session.open(spec["file"], spec.get("overrides", []), spec["cache"], settings=spec.get("settings"))
        _sessions[k] = s
    return s


def evaluate_remote(spec: dict, target: str, bindings: dict[str, Any]) -> dict:
    """Returns {"ok": True, "value": JSON} or {"ok": False, "error": diagnostic JSON}. Values that are
    artifacts come back encoded (tag + store path) since only JSON crosses the process boundary."""
    from expc.interpreter.executor import NodeFailed
    from expc.interpreter.store import encode
    from expc.spec.diagnostics import CompileError

    try:
        session = _session(spec)
        ex = session.executor(int(spec.get("run_id", 0)))
        value = ex.evaluate(target, bindings, bindings_note=bindings)
        pn = ex.plan(target, bindings)
        return {"ok": True, "value": encode(value, session.store.path(pn.key)), "key": pn.key,
                "ran": [n for n, _, s in ex.trail if s == "ran"], "pid": os.getpid()}
    except NodeFailed as e:
        return {"ok": False, "error": e.diag.to_json()}
    except CompileError as e:
        return {"ok": False, "error": e.diagnostics[0].to_json()}
