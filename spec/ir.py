"""The typed intermediate representation: what a checked program means, as pydantic data.

Values inside node arguments are JSON with a few tagged forms, resolved by the planner:
    {"$ref": ID, "path": [member, ...]}    the result of node ID (optionally a member of it)
    {"$param": NAME}                        the value of a param (default, override or search trial)
    {"$arith": "+"|"-"|"*"|"/"|"neg", "args": [a, b]}   scalar arithmetic over params
    {"$file": ABSPATH, "kind": "file"|"dir"|"any"}     a path; its content enters the node's key
    {"$op": NAME, ...fields}                the value of an inline operator (distribution, config)
Everything else is plain JSON. Spans are kept beside the values (arg_spans), never inside them, so
formatting never changes a value and so never a cache key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from expc.spec.diagnostics import Span


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
    value: Any = None  # `param NAME = EXPR` (JSON, may contain $param / $arith)
    dist: dict | None = None  # `param NAME ~ DIST`: {"$op": "uniform", "lo": .., "hi": .., "default": ..}
    type: str = "any"
    span: Span

    @property
    def has_default(self) -> bool:
        return self.dist is None or self.dist.get("default") is not None


class OpNode(BaseModel):
    """A call of an operator (a declaration, or an anonymous call inside an expression)."""

    model_config = ConfigDict(frozen=True)

    node: Literal["op"] = "op"
    id: str  # a declared name, or "decl.op" / "decl.op#2" for anonymous nodes inside an expression
    kind: str | None  # declaration kind; None for anonymous nodes
    op: str  # operator name
    version: int = 1
    type: str  # a type expression: "model", "split[data]"
    args: dict[str, Any]
    span: Span
    arg_spans: dict[str, Span] = Field(default_factory=dict)  # dotted path into args -> source span


class BindNode(BaseModel):
    """`NAME(param = value, ...)` or `NAME(search.best)`: node `target` re-instantiated with params bound.
    args: {"target": NAME, "bindings": {param: value}, "from": a record of params (or None)}."""

    model_config = ConfigDict(frozen=True)

    node: Literal["bind"] = "bind"
    id: str
    kind: str | None
    type: str
    args: dict[str, Any]
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

