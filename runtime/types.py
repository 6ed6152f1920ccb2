"""Value types, declared like operators, next to the operators that produce them. No torch here.

    SPLIT = value_type("split", "a train/test split", params=("T",),
                       members={"train": "T", "test": "T"}, kinds={"data"})

A type expression is a string: a name, optionally with type arguments (`split[data]`). A declared
type says:
- `parent`: subtyping (a `classifier` is a `model`: it is accepted wherever a model is);
- `params` and `members`: members may name the type's parameters (`split[T]` has `.train: T`);
- `node`: True for results computed by nodes (data, models, metrics, ...), False for inline
  configuration values (`es(...)`, `tpe(...)`), which may stand where a constant is expected;
- `kinds`: the declaration kinds whose statements may hold it (`data NAME = ...`);
- `artifact`: the Artifact class that stores and loads it (the store decodes by its tag);
- `summary`: how `expc run` / `expc show` print a result in one short line, and `show` how they print
  it in full (a report's table and plots);
- `algebra`: the operator that materializes arithmetic over values of the type (models: `algebra`).

spec/types.py keeps only the built-in scalar types (number, int, string, bool, list, record, any) and
the statement kinds; `TypeSystem` answers every question about both.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from expc.spec.types import BUILTIN_SUBTYPES, KINDS, TYPES


@dataclass(frozen=True)
class Shown:
    """A result shown in full after `expc run` and by `expc show` (beyond its one-line summary): a
    table, lines of text, and files named relative to the result's directory (plots)."""

    title: str = ""
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    lines: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValueType:
    name: str
    doc: str
    parent: str | None = None
    params: tuple[str, ...] = ()
    members: dict[str, str] = field(default_factory=dict, compare=False)
    open_members: bool = False  # any member may be read (typed `any`), like a record
    node: bool = True
    kinds: frozenset[str] = frozenset()
    artifact: type | None = None
    summary: Callable[[Any], str] | None = field(default=None, compare=False)
    algebra: str | None = None
    module: str = ""
    show: Callable[[Any], Shown | None] | None = field(default=None, compare=False)


def value_type(name: str, doc: str, *, parent: str | None = None, params: tuple[str, ...] = (),
               members: dict[str, str] | None = None, open_members: bool = False, node: bool = True,
               kinds: set[str] | frozenset[str] | tuple[str, ...] = (), artifact: type | None = None,
               summary: Callable[[Any], str] | None = None, algebra: str | None = None,
               show: Callable[[Any], Shown | None] | None = None) -> ValueType:
    """Declare a value type; assign it to a module-level name so the registry collects it."""
    import inspect

    for k in kinds:
        if k not in KINDS:
            raise TypeError(f"value type {name!r}: unknown declaration kind {k!r}")
    frame = inspect.currentframe()
    module = frame.f_back.f_globals.get("__name__", "") if frame and frame.f_back else ""
    return ValueType(name=name, doc=doc, parent=parent, params=tuple(params), members=dict(members or {}),
                     open_members=open_members, node=node, kinds=frozenset(kinds), artifact=artifact,
                     summary=summary, algebra=algebra, module=module, show=show)


# `{field}` stands for the type of an operator's argument: take(data) returns "{data}"; `{a|b}` for
# the nearest type the arguments share (a merge of two classifiers is a classifier, of a classifier
# and another model a model).
_TYPE_RE = re.compile(r"\s*(\{[A-Za-z_][A-Za-z0-9_]*(?:\|[A-Za-z_][A-Za-z0-9_]*)*\}|[A-Za-z_][A-Za-z0-9_]*)"
                      r"\s*(?:\[(.*)\])?\s*$")


@lru_cache(maxsize=4096)
def parse_type(expr: str) -> tuple[str, tuple[str, ...]]:
    """`split[data]` -> ("split", ("data",)); nested brackets are kept whole in an argument."""
    m = _TYPE_RE.match(expr)
    if m is None:
        raise ValueError(f"not a type expression: {expr!r}")
    name, inner = m.group(1), m.group(2)
    if not inner:
        return name, ()
    args, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    args.append(cur.strip())
    return name, tuple(args)


def template_fields(expr: str) -> tuple[str, ...]:
    """The arguments a return type names: "split[{data}]" -> ("data",), "{a|b}" -> ("a", "b")."""
    name, args = parse_type(expr)
    own = tuple(name.strip("{}").split("|")) if name.startswith("{") else ()
    return own + tuple(f for a in args for f in template_fields(a))


def format_type(name: str, args: tuple[str, ...] = ()) -> str:
    return f"{name}[{', '.join(args)}]" if args else name


def substitute(expr: str, bindings: dict[str, str]) -> str:
    """Replace type variables (and `{field}` placeholders) in a type expression."""
    name, args = parse_type(expr)
    if not args:
        return bindings.get(name, name)
    return format_type(name, tuple(substitute(a, bindings) for a in args))


class TypeSystemError(Exception):
    pass


class TypeSystem:
    """The built-in scalar types and the declared value types: subtyping, members, kinds."""

    def __init__(self, declared: Mapping[str, ValueType], validate: bool = True):
        """`validate`: check that every type named by a declaration exists (a registry built from an
        index of already checked declarations skips it, so as not to import every family)."""
        self.declared = declared
        self._ancestors: dict[str, tuple[str, ...]] = {}
        for t in declared.values() if validate else ():
            for ref in ([t.parent] if t.parent else []) + [m for m in t.members.values()]:
                base = parse_type(ref)[0]
                if base not in t.params and not self.known(base):
                    raise TypeSystemError(f"value type {t.name!r} ({t.module}) refers to unknown type {base!r}")

    # -- what exists -------------------------------------------------------------------------------

    def known(self, name: str) -> bool:
        return name in TYPES or name in self.declared

    def names(self) -> list[str]:
        return sorted(set(TYPES) | set(self.declared))

    def get(self, name: str) -> ValueType | None:
        return self.declared.get(parse_type(name)[0])

    def doc(self, name: str) -> str:
        base = parse_type(name)[0]
        return TYPES.get(base) or (self.declared[base].doc if base in self.declared else "")

    def ancestors(self, name: str) -> tuple[str, ...]:
        """The type and its parents, nearest first (type arguments dropped)."""
        hit = self._ancestors.get(name)
        if hit is None:
            out, base = [], parse_type(name)[0]
            while base and base not in out:
                out.append(base)
                t = self.declared.get(base)
                base = t.parent if t else None
            hit = self._ancestors[name] = tuple(out)
        return hit

    # -- questions the checker asks ----------------------------------------------------------------

    def is_subtype(self, actual: str, expected: str) -> bool:
        if expected == "any" or actual == "any" or actual == expected:
            return True
        a_name, a_args = parse_type(actual)
        e_name, e_args = parse_type(expected)
        if a_name in BUILTIN_SUBTYPES:
            return e_name in BUILTIN_SUBTYPES[a_name] and not e_args
        if e_name not in self.ancestors(a_name):
            return False
        if not e_args:
            return True
        if a_name != e_name or len(a_args) != len(e_args):
            return False
        return all(self.is_subtype(x, y) for x, y in zip(a_args, e_args))

    def join(self, names) -> str:
        """The nearest type all of `names` are subtypes of (`any` if there is none)."""
        names = list(names)
        if "any" in names:
            return "any"
        out: str | None = None
        for n in names:
            if out is None or self.is_subtype(out, n):
                out = n
            elif not self.is_subtype(n, out):
                out = next((a for a in self.ancestors(out) if self.is_subtype(n, a)), "any")
        return out or "any"

    def fill_returns(self, returns: str, arg_type: Callable[[str], str | None]) -> str:
        """An operator's return type with each `{field}` replaced by `arg_type(field)` (its argument's
        type; None: unknown, read as `any`) and each `{a|b}` by the join of those types."""
        name, args = parse_type(returns)
        if name.startswith("{"):
            got = [arg_type(f) for f in name.strip("{}").split("|")]
            return self.join(got) if all(got) else "any"
        return format_type(name, tuple(self.fill_returns(a, arg_type) for a in args))

    def accepts(self, actual: str, expected) -> bool:
        return any(self.is_subtype(actual, e) for e in expected)

    def is_node(self, name: str) -> bool:
        """Values computed by nodes: never accepted where a constant is expected."""
        for base in self.ancestors(name):
            t = self.declared.get(base)
            if t is not None:
                return t.node
        return False

    def members(self, name: str) -> dict[str, str] | None:
        """Member -> type of a value of this type (type arguments substituted); None: no members;
        an open type (record-like) answers {} and reads every member as `any`."""
        base, args = parse_type(name)
        for anc in self.ancestors(base):
            t = self.declared.get(anc)
            if t is None:
                continue
            if t.members or t.open_members:
                bind = dict(zip(t.params, args)) if anc == base else {}
                bind.update({p: "any" for p in t.params if p not in bind})
                return {m: substitute(mt, bind) for m, mt in t.members.items()}
        return None

    def is_open(self, name: str) -> bool:
        if parse_type(name)[0] in ("record", "any"):
            return True
        return any((t := self.declared.get(a)) is not None and t.open_members for a in self.ancestors(name))

    def kind_accepts(self, kind: str, name: str) -> bool:
        scalars = KINDS[kind][0]
        if any(self.is_subtype(name, s) for s in scalars):
            return True
        return any(kind in t.kinds for a in self.ancestors(name) if (t := self.declared.get(a)) is not None)

    def kind_types(self, kind: str) -> list[str]:
        return sorted(set(KINDS[kind][0]) | {t.name for t in self.declared.values() if kind in t.kinds})

    def _nearest(self, name: str, attr: str) -> ValueType | None:
        """The type itself or its nearest ancestor that declares `attr` (members, algebra, summary...
        are inherited)."""
        for a in self.ancestors(name):
            t = self.declared.get(a)
            if t is not None and getattr(t, attr):
                return t
        return None

    def algebra(self, name: str) -> str | None:
        """The operator that materializes arithmetic on values of this type (inherited)."""
        t = self._nearest(name, "algebra")
        return t.algebra if t else None

    def algebra_type(self, name: str) -> str | None:
        """The nearest ancestor that declares an algebra: the type of an arithmetic expression over it."""
        t = self._nearest(name, "algebra")
        return t.name if t else None

    def summary(self, name: str, value: Any) -> str | None:
        t = self._nearest(name, "summary")
        return t.summary(value) if t else None

    def show(self, name: str, value: Any) -> Shown | None:
        """How a result of this type is shown in full (a report's table and plots), if the type says."""
        t = self._nearest(name, "show")
        return t.show(value) if t else None

    def artifact_classes(self) -> dict[str, type]:
        out: dict[str, type] = {}
        for t in self.declared.values():
            if t.artifact is not None:
                tag = getattr(t.artifact, "tag", "")
                if tag in out and out[tag] is not t.artifact:
                    raise TypeSystemError(f"artifact tag {tag!r} is declared by two value types")
                out[tag] = t.artifact
        return out
