"""`expc export`: the resolved IR as YAML (OmegaConf), and back: load_yaml(export_yaml(p)) == p."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from omegaconf import OmegaConf

from expc.spec.diagnostics import Span
from expc.spec.ir import Program


def _plain(value: Any) -> Any:
    if isinstance(value, Span):
        return asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def export_yaml(program: Program) -> str:
    data = _plain(program.model_dump(mode="python"))
    # "$" keys are fine in YAML; OmegaConf would try to interpolate "${...}" strings, so escape those.
    conf = OmegaConf.create(_escape(data))
    return "# expc IR (load with expc.interpreter.export.load_yaml)\n" + OmegaConf.to_yaml(conf)


def load_yaml(text: str) -> Program:
    conf = OmegaConf.create(text)
    data = OmegaConf.to_container(conf, resolve=False)
    return Program.model_validate(_unescape(data))


def _escape(v: Any) -> Any:
    if isinstance(v, str) and "${" in v:
        return v.replace("${", "\\${")
    if isinstance(v, dict):
        return {k: _escape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_escape(x) for x in v]
    return v


def _unescape(v: Any) -> Any:
    if isinstance(v, str) and "\\${" in v:
        return v.replace("\\${", "${")
    if isinstance(v, dict):
        return {k: _unescape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unescape(x) for x in v]
    return v
