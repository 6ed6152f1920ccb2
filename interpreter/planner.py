"""Plan: bind params, resolve values, and give every node a content key.

A node's key hashes its operator, the operator's version, its arguments normalized by the params
model (defaults filled in, so writing a default or leaving it out is the same), the keys of its
inputs, and the content of the files it reads. Spans, comments, formatting and declaration order are
not part of it. The same node under different param bindings (a search trial) gets a different key
only if it depends on a param whose value differs, so the cached upstream work is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from expc.interpreter import symbolic
from expc.interpreter.graph import input_refs
from expc.runtime.registry import Registry
from expc.spec.diagnostics import Diagnostic, Span, closest_span
from expc.spec.ir import BindNode, Node, Program


class PlanError(Exception):
    def __init__(self, diag: Diagnostic):
        super().__init__(diag.message)
        self.diag = diag


class Pending(Exception):
    """The key depends on a result not computed yet (node(search.best) before the search ran): the
    executor computes `waits_for` under `env`, gives its value to the planner (Planner.results) and
    plans again. The planner never runs anything itself."""

    def __init__(self, node: str, waits_for: str, env: dict[str, Any] | None = None):
        super().__init__(f"{node} waits for {waits_for}")
        self.node = node
        self.waits_for = waits_for
        self.env = dict(env or {})


def result_key(node_id: str, env: dict[str, Any]) -> str:
    """How Planner.results names the value of a node computed under param values `env`."""
    return symbolic.canonical([node_id, env])


@dataclass(frozen=True)
class PlanNode:
    id: str  # the IR node computed (for a bind: its target)
    display: str  # the name shown to people (the bind's own name)
    key: str
    op: str
    version: int
    args: dict[str, Any]  # runtime args: refs as {"$ref": id, "key": k, "path": [...]}, paths absolute
    inputs: tuple[tuple[str, str, tuple[str, ...]], ...]  # (args path, input node id, member path)
    material: str  # canonical JSON that was hashed (for "why" in dry-run)
    env: tuple[tuple[str, str], ...]  # the param values it was planned under (canonical JSON)
    params_used: tuple[str, ...] = ()
    bound: tuple[tuple[str, Any], ...] = ()  # the planner's param bindings: inputs are computed under them


class FileHasher:
    """Content hashes of files and directories, memoized by (path, size, mtime) within a process."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, int, int], str] = {}

    def file(self, path: str) -> str:
        st = os.stat(path)
        k = (path, st.st_size, st.st_mtime_ns)
        h = self._memo.get(k)
        if h is None:
            d = hashlib.blake2b(digest_size=16)
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    d.update(chunk)
            h = d.hexdigest()
            self._memo[k] = h
        return h

    def path(self, path: str) -> str:
        p = Path(path)
        if p.is_dir():
            d = hashlib.blake2b(digest_size=16)
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                d.update(str(f.relative_to(p)).encode() + b"\0" + self.file(str(f)).encode())
            return d.hexdigest()
        return self.file(path)


@dataclass
class Planner:
    program: Program
    registry: Registry
    env: dict[str, Any] = field(default_factory=dict)  # param name -> value (overrides, search trial)
    hasher: FileHasher = field(default_factory=FileHasher)
    # results known so far, by result_key(node, env): bindings taken from results (search.best) read them
    results: dict[str, Any] = field(default_factory=dict)
    _memo: dict[str, PlanNode] = field(default_factory=dict)
    _visiting: set = field(default_factory=set)

    # -- params ------------------------------------------------------------------------------------

    def param_value(self, name: str, span: Span | None) -> Any:
        if name in self.env:
            return self.env[name]
        p = self.program.params.get(name)
        if p is None:
            raise PlanError(Diagnostic("E201", f"unknown param '{name}'", span))
        if p.dist is not None:
            if p.dist.get("default") is None:
                raise PlanError(Diagnostic("E311", f"param '{name}' has no default and no value was bound", p.span,
                                           hint="give it a default, bind it (node(name = value)) or search it"))
            return p.dist["default"]
        return self.resolve(p.value, span)

    def resolve(self, value: Any, span: Span | None) -> Any:
        """Replace $param and $arith by values, normalize inline operator values."""

        def fn(v):
            if isinstance(v, dict):
                if "$param" in v:
                    value = self.param_value(v["$param"], span)
                    for m in v.get("path", []):
                        if not isinstance(value, dict) or m not in value:
                            raise PlanError(Diagnostic("E208", f"param '{v['$param']}' has no field '{m}'", span))
                        value = value[m]
                    return value
                if "$arith" in v:
                    args = [self.resolve(a, span) for a in v["args"]]
                    try:
                        return symbolic.arith(v["$arith"], args)
                    except (ZeroDivisionError, TypeError) as e:
                        raise PlanError(Diagnostic("E303", f"cannot compute {v['$arith']} of {args}: {e}", span))
                if "$op" in v and self.registry.get(v["$op"]) is not None:
                    inner = {k: self.resolve(x, span) for k, x in v.items() if k != "$op"}
                    return {"$op": v["$op"], **self._normalize_inline(v["$op"], inner, span)}
            return None

        return symbolic.transform(value, fn)

    def _normalize_inline(self, name: str, values: dict, span: Span | None) -> dict:
        op = self.registry.get(name)
        try:
            model = op.params.model_validate(values)
        except ValidationError as e:
            raise PlanError(Diagnostic("E401", f"invalid arguments for {name}(): {_first_error(e)}", span))
        return model.model_dump(mode="json")

    # -- nodes -------------------------------------------------------------------------------------

    def plan(self, node_id: str) -> PlanNode:
        hit = self._memo.get(node_id)
        if hit is not None:
            return hit
        if node_id in self._visiting:  # pragma: no cover - the checker reports cycles first
            raise PlanError(Diagnostic("E205", f"dependency cycle through '{node_id}'", None))
        self._visiting.add(node_id)
        try:
            node = self.program.nodes[node_id]
            pn = self._plan_bind(node) if isinstance(node, BindNode) else self._plan_op(node)
        finally:
            self._visiting.discard(node_id)
        self._memo[node_id] = pn
        return pn

    def _plan_bind(self, node: Node) -> PlanNode:
        bindings: dict[str, Any] = {}
        frm = node.args.get("from")
        if frm is not None:
            refs = list(symbolic.refs(frm))
            if refs:
                ref = refs[0]
                k = result_key(ref["$ref"], self.env)
                if k not in self.results:
                    raise Pending(node.id, ref["$ref"], self.env)
                value = self.results[k]
                for m in ref.get("path", []):
                    value = value[m]
                if not isinstance(value, dict):
                    raise PlanError(Diagnostic("E301", f"{node.id}: expected a record of params, got {value!r}",
                                               node.arg_spans.get("from", node.span)))
                frm_value = value
            else:
                frm_value = self.resolve(frm, node.span)
            for k, v in frm_value.items():
                if k in self.program.params:
                    bindings[k] = v
        for k, v in node.args.get("bindings", {}).items():
            bindings[k] = self.resolve(v, node.arg_spans.get(f"bindings.{k}", node.span))
        sub = Planner(self.program, self.registry, {**self.env, **bindings}, self.hasher, self.results)
        target = sub.plan(node.args["target"])
        return PlanNode(
            id=target.id, display=node.id, key=target.key, op=target.op, version=target.version,
            args=target.args, inputs=target.inputs, material=target.material, env=target.env,
            params_used=target.params_used, bound=target.bound,
        )

    def _plan_op(self, node: Node) -> PlanNode:
        op = self.registry.get(node.op)
        if op is None:
            raise PlanError(Diagnostic("E206", f"unknown operator '{node.op}'", node.span))
        inputs: list[tuple[str, str, tuple[str, ...]]] = []
        input_keys: dict[str, str] = {}
        for path, ref in input_refs(node, self.registry):
            child = self.plan(ref["$ref"])
            inputs.append((path, ref["$ref"], tuple(ref.get("path", []))))
            input_keys[ref["$ref"]] = child.key
        used: set[str] = set()

        def track(v):
            if isinstance(v, dict) and "$param" in v:
                used.add(v["$param"])
            return None

        runtime_args: dict[str, Any] = {}
        key_args: dict[str, Any] = {}
        for k, v in node.args.items():
            f = op.field(k)
            span = node.arg_spans.get(k, node.span)
            if f is not None and f.deferred:
                runtime_args[k] = v  # evaluated by the operator, under its own bindings
                key_args[k] = self._deferred_material(v)
                continue
            symbolic.transform(v, track)
            resolved = self.resolve(v, span)
            runtime_args[k] = _refs_with_keys(resolved, input_keys)
            key_args[k] = resolved
        # Validate (catches bad overrides) and fill defaults so that explicit defaults key the same.
        try:
            validated = op.params.model_validate({k: _files_as_paths(v) for k, v in runtime_args.items()})
        except ValidationError as e:
            path = ".".join(str(x) for x in e.errors()[0].get("loc", ()))
            span = closest_span(node.arg_spans, path, node.span)
            raise PlanError(Diagnostic("E401", f"invalid value for {node.id}: {_first_error(e)}", span))
        dumped = validated.model_dump(mode="json")
        for fname, f in ((f.name, f) for f in op.fields):
            if fname not in key_args:
                key_args[fname] = dumped.get(fname)
        material_args = symbolic.transform(key_args, lambda v: self._material(v, input_keys))
        # Settings every operator may read through its context (ctx.seed, ctx.dtype) key every node;
        # device, workers and backend must not change results, so they don't.
        st = self.program.settings
        material = symbolic.canonical({"op": op.name, "version": op.version, "args": material_args,
                                       "seed": st.seed, "dtype": st.dtype})
        key = hashlib.blake2b(material.encode(), digest_size=20).hexdigest()
        env = tuple(sorted((p, symbolic.canonical(self.param_value(p, None))) for p in used))
        all_used = set(used)
        for _, nid, _ in inputs:
            all_used |= set(self.plan(nid).params_used)
        return PlanNode(
            id=node.id, display=node.id, key=key, op=op.name, version=op.version,
            args=_files_as_paths(runtime_args), inputs=tuple(inputs), material=material, env=env,
            params_used=tuple(sorted(all_used)), bound=tuple(sorted(self.env.items())),
        )

    def _material(self, v: Any, input_keys: dict[str, str]) -> Any:
        if isinstance(v, dict):
            if "$ref" in v:
                return {"$input": input_keys.get(v["$ref"], v["$ref"]), "path": v.get("path", [])}
            if "$file" in v:
                return {"$content": self.hasher.path(v["$file"]), "name": Path(v["$file"]).name}
        return None

    def _deferred_material(self, v: Any) -> Any:
        """Deferred references key by their *definition*: the referenced node's args and params, and
        the key it plans to with every searched (`~`) param at a fixed placeholder, so that a change
        upstream (data, a fine-tune's args) reruns a search without the params' values keying it."""

        def fn(x):
            if isinstance(x, dict) and "$ref" in x:
                n = self.program.nodes.get(x["$ref"])
                return {"$deferred": x["$ref"], "path": x.get("path", []),
                        "def": symbolic.transform(n.args, lambda y: None) if n else None,
                        "op": n.op if n else None,
                        "upstream": self._placeholder_planner().plan(x["$ref"]).key if n else None}
            return None

        return symbolic.transform(v, fn)

    def _placeholder_planner(self) -> "Planner":
        env = {name: self.registry.distribution(p.dist).placeholder()
               for name, p in self.program.params.items() if p.dist is not None}
        env.update(self.env)
        return Planner(self.program, self.registry, env, self.hasher, self.results)


def _refs_with_keys(value: Any, input_keys: dict[str, str]) -> Any:
    def fn(v):
        if isinstance(v, dict) and "$ref" in v:
            return {**v, "key": input_keys.get(v["$ref"])}
        return None

    return symbolic.transform(value, fn)


def _files_as_paths(v: Any) -> Any:
    """Files as absolute path strings (what the params model validates and the operator receives);
    refs stay as they are (input fields are Any)."""

    def fn(x):
        if isinstance(x, dict) and "$file" in x:
            return x["$file"]
        return None

    return symbolic.transform(v, fn)



def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    got = err.get("input")
    shown = f" (got {got!r})" if got is not None and not isinstance(got, (dict, list)) else ""
    return f"'{loc}': {err.get('msg')}{shown}" if loc else f"{err.get('msg')}{shown}"


def remembered(pn: PlanNode) -> str:
    """What the registry keeps of a node's last plan, so a later dry run can say what changed."""
    return json.dumps({"material": pn.material, "params": dict(pn.env)})


def explain(previous: str | None, pn: PlanNode) -> str:
    """Why a node must run, compared with the last plan of the same node: for dry-run."""
    if previous is None:
        return "new"
    try:
        prev = json.loads(previous)
        old = json.loads(prev["material"])
        new = json.loads(pn.material)
    except (ValueError, KeyError, TypeError):
        return "changed"
    if old.get("version") != new.get("version"):
        return f"operator {pn.op} version changed"
    reasons = [f"experiment {k} changed: {old.get(k)} -> {new.get(k)}"
               for k in ("seed", "dtype") if old.get(k) != new.get(k)]
    old_params, new_params = prev.get("params", {}), dict(pn.env)
    for name in sorted(set(old_params) & set(new_params)):
        if old_params[name] != new_params[name]:
            reasons.append(f"param {name} changed: {_short(json.loads(old_params[name]))} -> "
                           f"{_short(json.loads(new_params[name]))}")
    oa, na = old.get("args", {}), new.get("args", {})
    for k in sorted(set(oa) | set(na)):
        if oa.get(k) == na.get(k):
            continue
        ov, nv = oa.get(k), na.get(k)
        if _has(nv, "$input") or _has(ov, "$input"):
            reasons.append(f"input {k} changed")
        elif _has(nv, "$content"):
            reasons.append(f"file of {k} changed")
        else:
            reasons.append(f"{k} changed: {_short(ov)} -> {_short(nv)}")
    return "; ".join(reasons) or "changed"


def _has(v: Any, tag: str) -> bool:
    return any(isinstance(x, dict) and tag in x for _, x in symbolic.walk(v))


def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 40 else s[:37] + "..."
