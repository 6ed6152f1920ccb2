"""The typed intermediate representation: what a checked program means, as pydantic data.

Values inside node arguments are JSON with a few tagged forms, resolved by the planner:
    {"$ref": ID, "path": [member, ...]}    the result of node ID (optionally a member of it)
    {"$param": NAME}                        the value of a param (default, override or search trial)
    {"$arith": "+"|"-"|"*"|"/"|"neg", "args": [a, b]}   scalar arithmetic over params
    {"$file": ABSPATH, "kind": "file"|"dir"|"any"}     a path; its content enters the node's key
    {"$bind": ID, "bindings": {NAME: value}, "from": value|None}
                                            node ID re-instantiated with params bound
    {"$op": NAME, ...fields}                the value of an inline operator (distribution, config)
Everything else is plain JSON. Spans are kept beside the values (arg_spans), never inside them, so
formatting never changes a value and so never a cache key.
"""

from __future__ import annotations

from typing import Any, Literal

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
    def searched(self) -> bool:
        return self.dist is not None

    @property
    def has_default(self) -> bool:
        return self.dist is None or self.dist.get("default") is not None


class Node(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # a declared name, or "decl.op" / "decl.op#2" for anonymous nodes inside an expression
    kind: str | None  # declaration kind; None for anonymous nodes
    op: str  # operator name, or "bind" (re-instantiation of another node with params bound)
    version: int = 1
    type: str
    args: dict[str, Any]
    span: Span
    arg_spans: dict[str, Span] = Field(default_factory=dict)  # dotted path into args -> source span


class Program(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    files: list[str]  # the main file and every import, resolved
    settings: Settings
    settings_spans: dict[str, Span] = Field(default_factory=dict)
    params: dict[str, ParamDecl]
    nodes: dict[str, Node]
    decls: list[str]  # declared node ids, in source order: what `expc run` computes

    def node(self, id: str) -> Node:
        return self.nodes[id]
