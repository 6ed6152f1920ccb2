"""Command-line overrides, OmegaConf dotlist style: `seed=1 lr=3e-4 m_math.steps=50 experiment.device=cpu`.

    NAME=V            a param (or, if no param has that name, an experiment setting)
    experiment.K=V    an experiment setting
    NODE.FIELD=V      one argument of a declared node
Values are read like YAML scalars (numbers, true/false, none, [lists], "strings"). A bad key lists the
valid ones; a bad value says what the field accepts. Errors point into the command line.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from expc.runtime.registry import Registry
from expc.spec.diagnostics import CompileError, Diagnostic, SourceCache, Span, did_you_mean
from expc.spec.ir import Program, Settings

CMDLINE = "<command line>"


def parse_value(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null", "~"):
        return None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    if t[:1] in "[{\"":
        try:
            return json.loads(t)
        except ValueError:
            pass
    return t


def apply_overrides(program: Program, registry: Registry, overrides: list[str],
                    sources: SourceCache | None = None) -> tuple[Program, dict[str, Any]]:
    """Return the program with settings / node arguments replaced, and the param bindings."""
    line = " ".join(overrides)
    if sources is not None:
        sources.add(CMDLINE, line)
    env: dict[str, Any] = {}
    settings = program.settings.model_dump()
    nodes = dict(program.nodes)
    diags: list[Diagnostic] = []
    col = 1
    for item in overrides:
        span = Span(CMDLINE, 1, col, 1, col + len(item))
        col += len(item) + 1
        if "=" not in item:
            diags.append(Diagnostic("E002", f"bad override '{item}': expected KEY=VALUE", span))
            continue
        key, raw = item.split("=", 1)
        key = key.strip()
        value = parse_value(raw)
        parts = key.split(".")
        if len(parts) == 1 and key in program.params:
            p = program.params[key]
            err = _check_param(p, value)
            if err:
                diags.append(Diagnostic("E002", f"bad override '{item}': {err}", span))
            env[key] = value
        elif (len(parts) == 1 and key in Settings.model_fields and key != "name") or (
            len(parts) == 2 and parts[0] == "experiment"
        ):
            name = parts[-1]
            if name not in Settings.model_fields or name == "name":
                diags.append(Diagnostic("E002", f"unknown experiment setting '{name}' in override '{item}'", span,
                                        hint=did_you_mean(name, Settings.model_fields)))
                continue
            settings[name] = value
        elif len(parts) == 2 and parts[0] in program.nodes:
            node = program.nodes[parts[0]]
            op = registry.get(node.op)
            fields = [f.name for f in op.fields] if op else []
            if op is None or parts[1] not in fields:
                diags.append(Diagnostic(
                    "E002", f"'{parts[0]}' ({node.op}) has no argument '{parts[1]}'", span,
                    hint=did_you_mean(parts[1], fields) or ("arguments: " + ", ".join(fields)),
                ))
                continue
            f = op.params.model_fields[parts[1]]
            try:
                TypeAdapter(Annotated[(f.annotation, f)]).validate_python(value)
            except ValidationError as e:
                diags.append(Diagnostic("E002", f"bad override '{item}': {e.errors()[0]['msg']}", span))
                continue
            args = dict(node.args)
            args[parts[1]] = value
            nodes[parts[0]] = node.model_copy(update={"args": args})
        else:
            valid = sorted(program.params) + [f"experiment.{k}" for k in Settings.model_fields if k != "name"]
            valid += [f"{n}.<argument>" for n in program.decls]
            hint = did_you_mean(key, list(program.params) + list(Settings.model_fields) + [
                f"{n}.{f.name}" for n in program.decls if (o := registry.get(program.nodes[n].op))
                for f in o.fields])
            diags.append(Diagnostic("E002", f"unknown override key '{key}'", span,
                                    hint=hint or "valid keys: " + ", ".join(valid)))
    try:
        new_settings = Settings.model_validate(settings)
    except ValidationError as e:
        err = e.errors()[0]
        diags.append(Diagnostic("E002", f"bad experiment override: {'.'.join(map(str, err['loc']))}: {err['msg']}",
                                Span(CMDLINE, 1, 1, 1, max(2, len(line) + 1))))
        new_settings = program.settings
    if diags:
        raise CompileError(diags)
    return program.model_copy(update={"settings": new_settings, "nodes": nodes}), env


def _check_param(p, value: Any) -> str | None:
    if p.dist is not None:
        d = p.dist
        if d.get("$op") == "choice":
            if value not in d.get("options", []):
                return f"'{p.name}' must be one of {d.get('options')}"
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"'{p.name}' is a number"
        if "lo" in d and "hi" in d and not d["lo"] <= value <= d["hi"]:
            return f"'{p.name}' must be within [{d['lo']}, {d['hi']}]"
        return None
    current = p.value
    if isinstance(current, bool) != isinstance(value, bool) or (
        isinstance(current, (int, float)) and not isinstance(value, (int, float))
    ) or (isinstance(current, str) and not isinstance(value, str)):
        return f"'{p.name}' is {type(current).__name__}, got {value!r}"
    return None
