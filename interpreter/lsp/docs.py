"""Documentation of operators, their fields, settings and kinds, as the language server shows it
(hover, completion). An operator's parameter lines are the ones `expc ops NAME` prints."""

from __future__ import annotations

import json

from expc.runtime.registry import FieldInfo, Operator, Registry, type_name
from expc.spec.ir import Settings
from expc.spec.types import KINDS


def field_type(f: FieldInfo) -> str:
    if f.input_types is not None and f.constants is None:  # else the union: its constants too
        shown = " | ".join(f.input_types)
        return f"list[{shown}]" if f.is_list else shown
    return type_name(f.annotation)


def field_line(f: FieldInfo) -> str:
    """`steps: int  [required; >= 1]`, as `expc ops NAME` prints it."""
    default = "required" if f.required else f"default {json.dumps(f.default, default=str)}"
    extra = f"; {f.constraints}" if f.constraints else ""
    var = " (variadic)" if f.variadic else ""
    return f"{f.name}: {field_type(f)}{var}  [{default}{extra}]"


def signature(op: Operator) -> str:
    """`finetune(model, data, steps, lr, batch, ...) -> model`: the required fields, then `...` when
    there are optional ones."""
    shown = [("*" if f.variadic else "") + f.name for f in op.fields if f.required]
    if any(not f.required for f in op.fields):
        shown.append("...")
    return f"{op.name}({', '.join(shown)}) -> {op.returns}"


def operator_markdown(op: Operator) -> str:
    kinds = ", ".join(sorted(op.kinds)) or "(nested use only)"
    parts = [f"```exp\n{signature(op)}\n```", f"kinds: {kinds} · version {op.version}"]
    if op.doc:
        parts.append(op.doc)
    if op.fields:
        lines = []
        for f in op.fields:
            lines.append(f"  {field_line(f)}")
            if f.description:
                lines.append(f"      {f.description}")
        parts.append("parameters:\n```text\n" + "\n".join(lines) + "\n```")
    return "\n\n".join(parts)


def field_markdown(op: Operator, f: FieldInfo) -> str:
    text = f"```text\n{field_line(f)}\n```\nargument of `{signature(op)}`"
    return text + (f"\n\n{f.description}" if f.description else "")


def snippet(op: Operator) -> str:
    """The call with its required fields as tab stops: inputs positional, the others by name."""
    parts: list[str] = []
    positional = True  # leading inputs are written positionally: finetune(base, data, steps = ...)
    for i, f in enumerate((f for f in op.fields if f.required), start=1):
        positional = positional and f.input_types is not None
        parts.append(f"${{{i}:{f.name}}}" if positional else f"{f.name} = ${{{i}}}")
    return f"{op.name}({', '.join(parts)})$0"


def setting_markdown(name: str) -> str | None:
    f = Settings.model_fields.get(name)
    if f is None or name == "name":
        return None
    default = json.dumps(f.default, default=str)
    text = f"```text\n{name}: {type_name(f.annotation)}  [default {default}]\n```\nexperiment setting"
    return text + (f"\n\n{f.description}" if f.description else "")


def settings() -> list[str]:
    return [k for k in Settings.model_fields if k != "name"]


def kind_markdown(kind: str, registry: Registry) -> str:
    if kind not in KINDS:
        return f"`{kind}` is not a statement keyword"
    types = registry.types.kind_types(kind)
    ops = sorted(o.name for o in registry.ops.values() if kind in o.kinds and not o.inline)
    text = f"**{kind}**: {KINDS[kind][1]}\n\nholds: {', '.join(types) or 'any'}"
    if ops:
        text += "\n\noperators: " + ", ".join(f"`{o}`" for o in ops)
    if registry.get(kind) is not None:
        text += f"\n\n`{kind} NAME {{ ... }}` calls `{kind}(...)`"
    return text


def type_markdown(type_expr: str, registry: Registry) -> str:
    types = registry.types
    doc = types.doc(type_expr)
    members = types.members(type_expr) or {}
    text = f"`{type_expr}`" + (f": {doc}" if doc else "")
    if members:
        text += "\n\nmembers: " + ", ".join(f"`.{m}`: {t}" for m, t in members.items())
    return text
