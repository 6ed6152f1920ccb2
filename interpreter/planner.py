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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from expc.interpreter import symbolic
from expc.interpreter.graph import input_refs
from expc.interpreter.hashing import FileHasher  # noqa: F401  (re-exported: executor imports it here)
from expc.runtime.registry import Registry
from expc.spec.diagnostics import Diagnostic, Span, validation_diagnostics
from expc.spec.ir import Arith, BindNode, FileRef, Inline, Node, ParamRef, Program, Ref, Wire, params, refs, to_wire


class PlanError(Exception):
    def __init__(self, diag: Diagnostic):
        super().__init__(diag.message)
        self.diag = diag


class Pending(Exception):
    """The key depends on a result not computed yet (node(search.best) before the search ran): the
    executor computes `waits_for` under `bindings`, gives its value to the planner (Planner.results) and
    plans again. The planner never runs anything itself."""

    def __init__(self, node: str, waits_for: str, bindings: dict[str, Any] | None = None):
        super().__init__(f"{node} waits for {waits_for}")
        self.node = node
        self.waits_for = waits_for
        self.bindings = dict(bindings or {})


# A binding of this name replaces the experiment seed for what it plans (a replicate evaluates the same
# nodes under seeds 0..n-1): the seed enters every key, so each seed's nodes are cached apart.
SEED = "experiment.seed"


def seed_of(program: Program, bindings: dict[str, Any]) -> int:
    """The seed nodes planned under `bindings` run with."""
    return int(bindings.get(SEED, program.settings.seed))


def result_key(node_id: str, bindings: dict[str, Any]) -> str:
    """How Planner.results names the value of a node computed under param values `bindings`."""
    return symbolic.canonical([node_id, bindings])


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
    param_values: tuple[tuple[str, str], ...]  # the params it depends on directly, with their values (JSON)
    params_used: tuple[str, ...] = ()
    bound: tuple[tuple[str, Any], ...] = ()  # the planner's param bindings: inputs are computed under them
    params: Any = None  # the operator's params model, validated once here (inputs still as references)


@dataclass
class Planner:
    program: Program
    registry: Registry
    bindings: dict[str, Any] = field(default_factory=dict)  # param name -> value (overrides, search trial)
    hasher: FileHasher = field(default_factory=FileHasher)
    # results known so far, by result_key(node, bindings): bindings taken from results (search.best) read them
    results: dict[str, Any] = field(default_factory=dict)
    _memo: dict[str, PlanNode] = field(default_factory=dict)
    _visiting: set = field(default_factory=set)

    # -- params ------------------------------------------------------------------------------------

    def param_value(self, name: str, span: Span | None) -> Any:
        if name in self.bindings:
            return self.bindings[name]
        p = self.program.params.get(name)
        if p is None:
            raise PlanError(Diagnostic("E201", f"unknown param '{name}'", span))
        if p.dist is not None:
            default = p.default
            if default is None:
                raise PlanError(Diagnostic("E311", f"param '{name}' has no default and no value was bound", p.span,
                                           hint="give it a default, bind it (node(name = value)) or search it"))
            return default
        return self.resolve(p.value, span)

    def resolve(self, value: Any, span: Span | None, leaf: Callable[[Any], Wire | None] | None = None) -> Any:
        """A value as JSON with params, arithmetic and inline operator values resolved (inline values
        normalized by their params models); `leaf` may replace node references and files."""

        def fn(v):
            if isinstance(v, ParamRef):
                value = self.param_value(v.name, span)
                for m in v.path:
                    if not isinstance(value, dict) or m not in value:
                        raise PlanError(Diagnostic("E208", f"param '{v.name}' has no field '{m}'", span))
                    value = value[m]
                return Wire(value)
            if isinstance(v, Arith):
                args = [self.resolve(a, span) for a in v.args]
                try:
                    return Wire(symbolic.arith(v.op, args))
                except (ZeroDivisionError, TypeError) as e:
                    raise PlanError(Diagnostic("E303", f"cannot compute {v.op} of {args}: {e}", span))
            if isinstance(v, Inline) and self.registry.get(v.op) is not None:
                inner = {k: self.resolve(x, span) for k, x in v.args.items()}
                return Wire({"$op": v.op, **self._normalize_inline(v.op, inner, span)})
            return leaf(v) if leaf is not None else None

        return to_wire(value, fn)

    def _normalize_inline(self, name: str, values: dict, span: Span | None) -> dict:
        op = self.registry.get(name)
        try:
            model = op.params.model_validate(_files_as_paths(values))
        except ValidationError as e:
            raise PlanError(validation_diagnostics(e.errors()[:1], {}, span, f"{name}()")[0])
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

    def _plan_bind(self, node: BindNode) -> PlanNode:
        bindings: dict[str, Any] = {}
        if node.source is not None:
            found = list(refs(node.source))
            if found:
                ref = found[0]
                k = result_key(ref.node, self.bindings)
                if k not in self.results:
                    raise Pending(node.id, ref.node, self.bindings)
                value = self.results[k]
                for m in ref.path:
                    value = value[m]
                if not isinstance(value, dict):
                    raise PlanError(Diagnostic("E301", f"{node.id}: expected a record of params, got {value!r}",
                                               node.arg_spans.get("source", node.span)))
                source = value
            else:
                source = self.resolve(node.source, node.span)
            for k, v in source.items():
                if k in self.program.params:
                    bindings[k] = v
        for k, v in node.bindings.items():
            bindings[k] = self.resolve(v, node.arg_spans.get(f"bindings.{k}", node.span))
        sub = Planner(self.program, self.registry, {**self.bindings, **bindings}, self.hasher, self.results)
        target = sub.plan(node.target)
        return PlanNode(
            id=target.id, display=node.id, key=target.key, op=target.op, version=target.version,
            args=target.args, inputs=target.inputs, material=target.material, param_values=target.param_values,
            params_used=target.params_used, bound=target.bound, params=target.params,
        )

    def _plan_op(self, node: Node) -> PlanNode:
        op = self.registry.get(node.op)
        if op is None:
            raise PlanError(Diagnostic("E206", f"unknown operator '{node.op}'", node.span))
        inputs: list[tuple[str, str, tuple[str, ...]]] = []
        input_keys: dict[str, str] = {}
        for path, ref in input_refs(node, self.registry):
            child = self.plan(ref.node)
            inputs.append((path, ref.node, ref.path))
            input_keys[ref.node] = child.key

        def runtime_leaf(v):  # what the operator receives: inputs by key (the executor loads them), paths
            if isinstance(v, Ref):
                return Wire({"$ref": v.node, **({"path": list(v.path)} if v.path else {}),
                             "key": input_keys.get(v.node)})
            if isinstance(v, FileRef):
                return Wire(v.path)
            return None

        def key_leaf(v):  # what the key hashes: inputs by their keys, files by their content
            if isinstance(v, Ref):
                return Wire({"$input": input_keys.get(v.node, v.node), "path": list(v.path)})
            if isinstance(v, FileRef):
                return Wire({"$content": self.hasher.path(v.path), "name": Path(v.path).name})
            return None

        used: set[str] = set()
        runtime_args: dict[str, Any] = {}
        material_args: dict[str, Any] = {}
        for k, v in node.args.items():
            f = op.field(k)
            span = node.arg_spans.get(k, node.span)
            if f is not None and f.deferred:
                runtime_args[k] = to_wire(v)  # evaluated by the operator, under its own bindings
                material_args[k] = self._deferred_material(v)
                continue
            used |= params(v)
            runtime_args[k] = self.resolve(v, span, runtime_leaf)
            material_args[k] = self.resolve(v, span, key_leaf)
        # Validate (catches bad overrides) and fill defaults so that explicit defaults key the same.
        try:
            validated = op.params.model_validate(runtime_args)
        except ValidationError as e:
            raise PlanError(validation_diagnostics(e.errors()[:1], node.arg_spans, node.span, f"{op.name}()")[0])
        dumped = validated.model_dump(mode="json")
        for fname in (f.name for f in op.fields):
            if fname not in material_args:
                material_args[fname] = dumped.get(fname)
        # Settings every operator may read through its context (ctx.seed, ctx.dtype) key every node;
        # device, workers and backend must not change results, so they don't.
        st = self.program.settings
        material = symbolic.canonical({"op": op.name, "version": op.version, "args": material_args,
                                       "seed": seed_of(self.program, self.bindings), "dtype": st.dtype})
        key = hashlib.blake2b(material.encode(), digest_size=20).hexdigest()
        values = tuple(sorted((p, symbolic.canonical(self.param_value(p, None))) for p in used))
        all_used = set(used)
        for _, nid, _ in inputs:
            all_used |= set(self.plan(nid).params_used)
        return PlanNode(
            id=node.id, display=node.id, key=key, op=op.name, version=op.version,
            args=runtime_args, inputs=tuple(inputs), material=material, param_values=values,
            params_used=tuple(sorted(all_used)), bound=tuple(sorted(self.bindings.items())), params=validated,
        )

    def _deferred_material(self, v: Any) -> Any:
        """Deferred references key by their *definition*: the referenced node's args and params, and
        the key it plans to with every searched (`~`) param at a fixed placeholder, so that a change
        upstream (data, a fine-tune's args) reruns a search without the params' values keying it."""

        def fn(x):
            if isinstance(x, Ref):
                n = self.program.nodes.get(x.node)
                return Wire({"$deferred": x.node, "path": list(x.path),
                             "def": _definition(n) if n else None,
                             "op": n.op if n else None,
                             "upstream": self._placeholder_planner().plan(x.node).key if n else None})
            return None

        return to_wire(v, fn)

    def _placeholder_planner(self) -> "Planner":
        bindings = {name: self.registry.distribution(to_wire(p.dist)).placeholder()
               for name, p in self.program.params.items() if p.dist is not None}
        bindings.update(self.bindings)
        return Planner(self.program, self.registry, bindings, self.hasher, self.results)


@dataclass(frozen=True)
class Plan:
    """What a run computes, decided before anything runs: every node the targets need, inputs first,
    each with its validated params and its content key, and the nodes that can only be planned once
    another node's result exists (`node(sweep.best)` waits for `sweep`)."""

    nodes: tuple[PlanNode, ...]
    pending: tuple[tuple[str, str], ...]  # (node, the node whose result it waits for)
    targets: tuple[str, ...]

    def __iter__(self):
        return iter(self.nodes)


def plan(program: Program, registry: Registry, bindings: dict[str, Any] | None = None,
         targets: list[str] | None = None, hasher: FileHasher | None = None,
         results: dict[str, Any] | None = None) -> Plan:
    """Plan `targets` (default: every declared node) under param `bindings`. Nothing runs; `results`
    holds node results already known (see Pending)."""
    hasher = hasher or FileHasher()
    results = {} if results is None else results
    planners: dict[str, Planner] = {}

    def planner_for(b: dict[str, Any]) -> Planner:
        k = symbolic.canonical(b)
        if k not in planners:
            planners[k] = Planner(program, registry, dict(b), hasher, results)
        return planners[k]

    order: list[PlanNode] = []
    pending: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    done: set[tuple[str, str]] = set()

    def visit(nid: str, b: dict[str, Any]) -> None:
        if (nid, symbolic.canonical(b)) in seen:
            return
        seen.add((nid, symbolic.canonical(b)))
        try:
            pn = planner_for(b).plan(nid)
        except Pending as p:
            pending.append((nid, p.waits_for))
            return
        for _, child, _ in pn.inputs:
            visit(child, dict(pn.bound))  # a bind's target computes its inputs under the bind's params
        if (pn.display, pn.key) not in done:
            done.add((pn.display, pn.key))
            order.append(pn)

    names = tuple(targets or program.decls)
    for nid in names:
        visit(nid, dict(bindings or {}))
    return Plan(tuple(order), tuple(pending), names)


def _definition(n: Node) -> Any:
    """A node's definition as JSON (what a deferred reference to it keys by)."""
    if isinstance(n, BindNode):
        return {"target": n.target, "bindings": {k: to_wire(v) for k, v in n.bindings.items()},
                "from": to_wire(n.source)}
    return {k: to_wire(v) for k, v in n.args.items()}


def _files_as_paths(v: Any) -> Any:
    """Inline values' file fields as the path strings their params models take."""
    if isinstance(v, dict):
        if "$file" in v:
            return v["$file"]
        return {k: _files_as_paths(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_files_as_paths(x) for x in v]
    return v


def remembered(pn: PlanNode) -> str:
    """What the registry keeps of a node's last plan, so a later dry run can say what changed."""
    return json.dumps({"material": pn.material, "params": dict(pn.param_values)})


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
    old_params, new_params = prev.get("params", {}), dict(pn.param_values)
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
    """Whether key material (JSON) holds a tagged dict such as {"$input": ...}."""
    if isinstance(v, dict):
        return tag in v or any(_has(x, tag) for x in v.values())
    if isinstance(v, list):
        return any(_has(x, tag) for x in v)
    return False


def _short(v: Any) -> str:
    s = json.dumps(v)
    return s if len(s) <= 40 else s[:37] + "..."
