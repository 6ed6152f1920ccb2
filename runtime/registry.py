"""The operator registry: one decorated function per operator, with an explicit pydantic params model.

    class TakeParams(Params):
        data: Input["data"]
        n: int = Field(ge=1, description="number of examples to keep")

    @op("take", params=TakeParams, kinds={"data"}, returns="data", version=1)
    def take(p: TakeParams, ctx) -> ...:
        '''The first n examples of a dataset.'''

The decorator returns an `Operator` object; `load_registry()` collects the `Operator` objects defined
in the modules of `expc.runtime.ops` (modules are imported, never executed for side effects: nothing
is registered globally). Duplicate names are an error at load time. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict

from expc.spec.types import KINDS, TYPES


class Params(BaseModel):
    """Base of every operator's params model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


@dataclass(frozen=True)
class In:
    """Marks a params field as an input that comes from another node (a data source, a model, ...).

    The checker verifies the type of the expression bound to it; at run time the field holds the
    loaded value of the input node.
    """

    types: tuple[str, ...]


@dataclass(frozen=True)
class Variadic:
    """Marks a list field that takes all remaining positional arguments: mix(a, b, c, weights=...)."""


@dataclass(frozen=True)
class IsPath:
    """Marks a string field naming a file or directory. The checker resolves it relative to the .exp
    file that wrote it and reports a missing one at check time; the planner hashes its *content* into
    the node's key, so editing a data file reruns exactly the nodes that read it."""

    kind: str = "any"  # "file" | "dir" | "any"
    keywords: tuple[str, ...] = ()  # values that are not paths (tokenizer = "bytes")


# FilePath / DirPath / AnyPath: annotations of path fields (the operator receives an absolute path).
FilePath = Annotated[str, IsPath("file")]
DirPath = Annotated[str, IsPath("dir")]
AnyPath = Annotated[str, IsPath("any")]


@dataclass(frozen=True)
class Deferred:
    """Marks a field whose node references are *not* computed before the operator runs: the operator
    receives them symbolically and evaluates them itself, under bindings, with ctx.evaluate (a search
    objective is evaluated once per trial with that trial's params)."""


class _InputFactory:
    def __getitem__(self, types: str | tuple[str, ...]):
        if isinstance(types, str):
            types = (types,)
        for t in types:
            if t not in TYPES:
                raise TypeError(f"unknown type {t!r} in Input[...]")
        return Annotated[Any, In(tuple(types))]


# Input["model"] or Input["data", "split"]: the annotation of an input field.
Input = _InputFactory()


@dataclass(frozen=True)
class FieldInfo:
    name: str
    required: bool
    default: Any
    annotation: Any
    description: str
    input_types: tuple[str, ...] | None  # set for inputs; for lists of inputs too
    path_kind: str | None  # set for FilePath / DirPath / AnyPath fields
    path_keywords: tuple[str, ...]  # strings such a field takes that are not paths
    deferred: bool  # node references inside are evaluated by the operator (see Deferred)
    is_list: bool
    variadic: bool
    constraints: str  # human text: ">= 1", "in [0, 1]"


@dataclass(frozen=True)
class Operator:
    name: str
    fn: Callable[..., Any]
    params: type[Params]
    kinds: frozenset[str]
    returns: str
    version: int
    doc: str
    # Per-tensor merge kernels (runtime/merge) are fused by the algebra compiler rather than run as nodes.
    tensorwise: bool = False
    # Ops whose result is a pure, cheap value (distributions, objectives, samplers) are folded by the
    # checker into their parent's params instead of becoming nodes of the plan.
    inline: bool = False
    module: str = ""
    fields: tuple[FieldInfo, ...] = field(default=(), compare=False)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def field(self, name: str) -> FieldInfo | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def summary(self) -> str:
        return (self.doc.strip().splitlines() or [""])[0]


def op(
    name: str,
    *,
    params: type[Params],
    kinds: set[str] | frozenset[str] | tuple[str, ...] = (),
    returns: str,
    version: int = 1,
    tensorwise: bool = False,
    inline: bool = False,
) -> Callable[[Callable[..., Any]], Operator]:
    """Declare an operator. `kinds` are the declaration kinds it may appear under at top level
    (nested calls only need a matching type); `version` enters cache keys: bump it when results change."""
    if returns not in TYPES:
        raise TypeError(f"operator {name!r}: unknown return type {returns!r}")
    for k in kinds:
        if k not in KINDS:
            raise TypeError(f"operator {name!r}: unknown kind {k!r}")
    if not (isinstance(params, type) and issubclass(params, Params)):
        raise TypeError(f"operator {name!r}: params must be a subclass of expc.runtime.registry.Params")

    def deco(fn: Callable[..., Any]) -> Operator:
        return Operator(
            name=name,
            fn=fn,
            params=params,
            kinds=frozenset(kinds),
            returns=returns,
            version=version,
            doc=inspect.getdoc(fn) or "",
            tensorwise=tensorwise,
            inline=inline,
            module=fn.__module__,
            fields=_describe_fields(name, params),
        )

    return deco


def _describe_fields(op_name: str, params: type[Params]) -> tuple[FieldInfo, ...]:
    out = []
    for fname, f in params.model_fields.items():
        ann = f.annotation
        meta = list(f.metadata)
        input_types = None
        is_list = False
        variadic = any(isinstance(m, Variadic) for m in meta)
        is_path = next((m for m in meta if isinstance(m, IsPath)), None)
        path_kind = is_path.kind if is_path else None
        for m in meta:
            if isinstance(m, In):
                input_types = m.types
        origin = typing.get_origin(ann)
        if origin in (list, tuple):
            is_list = True
            (item,) = typing.get_args(ann)[:1]
            if typing.get_origin(item) is Annotated:
                for m in typing.get_args(item)[1:]:
                    if isinstance(m, In):
                        input_types = m.types
        if variadic and not is_list:
            raise TypeError(f"operator {op_name!r}: Variadic field {fname!r} must be a list")
        out.append(
            FieldInfo(
                name=fname,
                required=f.is_required(),
                default=None if f.is_required() else f.get_default(call_default_factory=True),
                annotation=ann,
                description=f.description or "",
                input_types=input_types,
                path_kind=path_kind,
                path_keywords=is_path.keywords if is_path else (),
                deferred=any(isinstance(m, Deferred) for m in meta),
                is_list=is_list,
                variadic=variadic,
                constraints=_constraints(meta),
            )
        )
    return tuple(out)


def _constraints(meta: list[Any]) -> str:
    parts = []
    for m in meta:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "len >=")):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
    return ", ".join(parts)


def type_name(annotation: Any) -> str:
    """A short human name for a params field's annotation (for `expc ops NAME`)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        args = typing.get_args(annotation)
        for m in args[1:]:
            if isinstance(m, In):
                return " | ".join(m.types)
        return type_name(args[0])
    if origin is Literal:
        return " | ".join(repr(a).replace("'", '"') for a in typing.get_args(annotation))
    if origin in (list, tuple):
        args = typing.get_args(annotation)
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "none"
    names = {int: "int", float: "number", str: "string", bool: "bool", dict: "record", Any: "any"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


class RegistryError(Exception):
    pass


@dataclass(frozen=True)
class Registry:
    ops: dict[str, Operator]

    def get(self, name: str) -> Operator | None:
        return self.ops.get(name)

    def names(self) -> list[str]:
        return sorted(self.ops)

    def __contains__(self, name: str) -> bool:
        return name in self.ops


def collect(modules) -> Registry:
    """Build a registry from module objects; a duplicate name is an error naming both places."""
    ops: dict[str, Operator] = {}
    for mod in modules:
        for value in vars(mod).values():
            if isinstance(value, Operator) and value.module == mod.__name__:
                if value.name in ops:
                    other = ops[value.name]
                    raise RegistryError(
                        f"operator {value.name!r} is declared twice: in {other.module} and in {value.module}"
                    )
                ops[value.name] = value
    return Registry(ops)


@lru_cache(maxsize=1)
def load_registry() -> Registry:
    """Every operator in expc.runtime.ops, in module order (deterministic)."""
    import expc.runtime.ops as pkg

    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    modules = [importlib.import_module(f"{pkg.__name__}.{n}") for n in names]
    return collect(modules)
