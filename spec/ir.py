"""The typed intermediate representation: what a checked program means, as pydantic data.

A value inside a node's arguments is one of a discriminated union of frozen models (`Value`):
    Const(value)                 a constant scalar (number, string, bool, none)
    ListV(items), RecordV(fields)  a list / record of values
    Ref(node, path)              the result of a node (optionally a member of it)
    ParamRef(name, path)         the value of a param (default, override or search trial)
    Arith(op, args)              scalar arithmetic over params, op in + - * / neg
    FileRef(path, file_kind)     a path; its content enters the node's key
    Inline(op, args)             the value of an inline operator (distribution, configuration)
`walk` and `transform` are the one visitor every pass uses. Operators and the cache keys see the
values' wire form (`to_wire`: JSON with "$ref", "$param", "$op", ... tags), which is also what a value
compares equal to. Spans are kept beside the values (arg_spans), never inside them, so formatting
never changes a value and so never a cache key.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Iterator, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from expc.spec.diagnostics import Span


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, _Value):
            return type(self) is type(other) and self.__dict__ == other.__dict__
        return to_wire(self) == other  # a value equals its wire form: Const(1) == 1

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(to_wire(self))))


class Const(_Value):
    kind: Literal["const"] = "const"
    value: Union[bool, int, float, str, None]


class ListV(_Value):
    kind: Literal["list"] = "list"
    items: tuple["Value", ...] = ()


class RecordV(_Value):
    kind: Literal["record"] = "record"
    fields: dict[str, "Value"] = Field(default_factory=dict)


class Ref(_Value):
    kind: Literal["ref"] = "ref"
    node: str
    path: tuple[str, ...] = ()


class ParamRef(_Value):
    kind: Literal["param"] = "param"
    name: str
    path: tuple[str, ...] = ()


class Arith(_Value):
    kind: Literal["arith"] = "arith"
    op: Literal["+", "-", "*", "/", "neg"]
    args: tuple["Value", ...]


class FileRef(_Value):
    kind: Literal["file"] = "file"
    path: str
    file_kind: Literal["file", "dir", "any"] = "any"


class Inline(_Value):
    kind: Literal["inline"] = "inline"
    op: str
    args: dict[str, "Value"] = Field(default_factory=dict)


Value = Annotated[Union[Const, ListV, RecordV, Ref, ParamRef, Arith, FileRef, Inline], Field(discriminator="kind")]
for _cls in (ListV, RecordV, Arith, Inline):
    _cls.model_rebuild()

SYMBOLIC = (Ref, ParamRef, Arith)  # values known only when planned (or run)


def const(x: Any) -> Any:
    """A value from plain JSON (lists, dicts, scalars); values already typed stay as they are."""
    if isinstance(x, _Value):
        return x
    if isinstance(x, (list, tuple)):
        return ListV(items=tuple(const(v) for v in x))
    if isinstance(x, dict):
        return RecordV(fields={str(k): const(v) for k, v in x.items()})
    return Const(value=x)


def children(v: Any) -> Iterator[tuple[str, Any]]:
    """(path segment, child) of a value: list indices, record keys, arithmetic and inline arguments."""
    if isinstance(v, ListV):
        yield from ((str(i), x) for i, x in enumerate(v.items))
    elif isinstance(v, RecordV):
        yield from v.fields.items()
    elif isinstance(v, Arith):
        yield from (("args." + str(i), x) for i, x in enumerate(v.args))
    elif isinstance(v, Inline):
        yield from v.args.items()


def walk(v: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every sub-value with its dotted path (as in arg_spans: "models.1", "expr.args.0")."""
    yield path, v
    for seg, child in children(v):
        yield from walk(child, f"{path}.{seg}" if path else seg)


def transform(v: Any, fn: Callable[[Any], Any]) -> Any:
    """Rebuild a value top-down: `fn` returns a replacement for a sub-value, or None to recurse into
    it. The result of a replaced sub-value may be anything (the planner turns values into JSON)."""
    repl = fn(v)
    if repl is not None:
        return repl
    if isinstance(v, ListV):
        return ListV(items=tuple(transform(x, fn) for x in v.items))
    if isinstance(v, RecordV):
        return RecordV(fields={k: transform(x, fn) for k, x in v.fields.items()})
    if isinstance(v, Arith):
        return Arith(op=v.op, args=tuple(transform(x, fn) for x in v.args))
    if isinstance(v, Inline):
        return Inline(op=v.op, args={k: transform(x, fn) for k, x in v.args.items()})
    return v


class Wire:
    """What a `to_wire` hook returns to replace a sub-value by JSON (None may be that JSON)."""

    __slots__ = ("json",)

    def __init__(self, json: Any):
        self.json = json


def to_wire(v: Any, fn: Callable[[Any], "Wire | None"] | None = None) -> Any:
    """A value as JSON: what operators receive for symbolic fields and what cache keys hash. `fn` may
    replace a sub-value first: it returns Wire(json), or None to convert the sub-value as usual."""
    if fn is not None:
        repl = fn(v)
        if repl is not None:
            return repl.json
    if isinstance(v, Const):
        return v.value
    if isinstance(v, ListV):
        return [to_wire(x, fn) for x in v.items]
    if isinstance(v, RecordV):
        return {k: to_wire(x, fn) for k, x in v.fields.items()}
    if isinstance(v, Ref):
        return {"$ref": v.node, **({"path": list(v.path)} if v.path else {})}
    if isinstance(v, ParamRef):
        return {"$param": v.name, **({"path": list(v.path)} if v.path else {})}
    if isinstance(v, Arith):
        return {"$arith": v.op, "args": [to_wire(x, fn) for x in v.args]}
    if isinstance(v, FileRef):
        return {"$file": v.path, "kind": v.file_kind}
    if isinstance(v, Inline):
        return {"$op": v.op, **{k: to_wire(x, fn) for k, x in v.args.items()}}
    if isinstance(v, dict):
        return {k: to_wire(x, fn) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_wire(x, fn) for x in v]
    return v


def refs(v: Any) -> Iterator[Ref]:
    return (x for _, x in walk(v) if isinstance(x, Ref))


def params(v: Any) -> set[str]:
    return {x.name for _, x in walk(v) if isinstance(x, ParamRef)}


def is_const(v: Any) -> bool:
    return not any(isinstance(x, SYMBOLIC) for _, x in walk(v))


class Settings(BaseModel):
    """The `experiment NAME { ... }` block."""

    model_config = ConfigDict(extra="forbid")

    name: str = "experiment"
    seed: int = Field(0, ge=0, description="global seed; operators derive their own seeds from it")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$", description="auto | cpu | cuda[:N]")
    # forward passes of training and evaluation run under autocast in this dtype (weights stay float32)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    workers: int = Field(1, ge=1, le=1024, description="local worker processes for parallel work")
    backend: Literal["local", "ray"] = "local"
    address: str | None = Field(None, description="Ray cluster address (backend = \"ray\"); default: local")


class ParamDecl(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    value: Value | None = None  # `param NAME = EXPR` (may contain ParamRef / Arith)
    dist: Inline | None = None  # `param NAME ~ DIST`: Inline("uniform", {lo, hi, default})
    default: Any = None  # of a `~` param: its distribution's default_value() (JSON), None when it has none
    type: str = "any"
    span: Span

    @property
    def has_default(self) -> bool:
        return self.dist is None or self.default is not None


class OpNode(BaseModel):
    """A call of an operator (a declaration, or an anonymous call inside an expression)."""

    model_config = ConfigDict(frozen=True)

    node: Literal["op"] = "op"
    id: str  # a declared name, or "decl.op" / "decl.op#2" for anonymous nodes inside an expression
    kind: str | None  # declaration kind; None for anonymous nodes
    op: str  # operator name
    version: int = 1
    type: str  # a type expression: "model", "split[data]"
    args: dict[str, Value]
    span: Span
    arg_spans: dict[str, Span] = Field(default_factory=dict)  # dotted path into args -> source span


class BindNode(BaseModel):
    """`NAME(param = value, ...)` or `NAME(search.best)`: node `target` re-instantiated with params bound:
    `bindings` by name, and every param of the record `source` (such as a search's .best)."""

    model_config = ConfigDict(frozen=True)

    node: Literal["bind"] = "bind"
    id: str
    kind: str | None
    type: str
    target: str
    bindings: dict[str, Value] = Field(default_factory=dict)
    source: Value | None = None
    span: Span
    arg_spans: dict[str, Span] = Field(default_factory=dict)

    @property
    def op(self) -> str:
        """What people see in place of an operator name (dry-run rows, the graph)."""
        return "bind"


Node = Annotated[Union[OpNode, BindNode], Field(discriminator="node")]


class Program(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    files: list[str]  # the main file and every import, resolved
    settings: Settings
    settings_spans: dict[str, Span] = Field(default_factory=dict)
    params: dict[str, ParamDecl]
    nodes: dict[str, Node]
    decls: list[str]  # declared node ids, in source order: what `expc run` computes

