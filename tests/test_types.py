"""Value types are declared in runtime/ (expc.runtime.types) and the checker asks the registry about
them: members with type parameters, subtyping, kinds, node vs inline values, artifacts."""

from __future__ import annotations

import dataclasses
import types as pytypes

import pytest
from pydantic import Field

from expc.interpreter.compiler import compile
from expc.runtime.registry import Input, Params, RegistryError, builtin_modules, collect, load_registry, op
from expc.runtime.types import value_type


def test_a_split_is_typed_by_what_it_splits(tmp_path):
    path = tmp_path / "t.exp"
    path.write_text('data d = arithmetic(n = 20)\ndata p = split(d, test = 0.5)\ndata t = take(p.train, 5)\n')
    nodes = compile(path).program.nodes
    assert nodes["p"].type == "split[data]"
    assert nodes["t"].type == "data"  # take(x) has the type of x


def test_an_inline_value_may_be_a_choice_option(tmp_path):
    # agents are inline configuration values: `choice(mlp(...), ...)` was a false E301
    path = tmp_path / "t.exp"
    path.write_text("param arch ~ choice(mlp(hidden = [8]), mlp(hidden = [16]), default = mlp(hidden = [8]))\n")
    assert compile(path).program.params["arch"].type == "any"


def test_a_node_type_is_not_a_constant(tmp_path):
    path = tmp_path / "t.exp"
    path.write_text("data d = arithmetic(n = 20)\nparam p = d\n")
    with pytest.raises(Exception) as err:
        compile(path)
    (d,) = err.value.diagnostics
    assert d.code == "E301" and "must be a constant" in d.message


def _module(name: str, **values) -> pytypes.ModuleType:
    """A module named `name` holding `values`, as if they had been declared in it."""
    mod = pytypes.ModuleType(name)
    for k, v in values.items():
        setattr(mod, k, dataclasses.replace(v, module=name))
    return mod


def test_subtypes_are_accepted_where_the_parent_is():
    t = load_registry().types
    assert t.is_subtype("split[data]", "split") and t.is_subtype("int", "number")
    assert not t.is_subtype("number", "int") and not t.is_subtype("split[data]", "split[model]")
    reg = collect([*builtin_modules(), _module("fam", RANKER=value_type("ranker", "a ranking model", parent="model"))])
    assert reg.types.is_subtype("ranker", "model") and reg.types.algebra("ranker") == "algebra"
    assert reg.types.kind_accepts("train", "ranker") and reg.types.is_node("ranker")


def test_an_operator_naming_an_undeclared_type_is_a_registry_error():
    class P(Params):
        x: Input["tensor"] = Field(description="an input of a type nobody declares")

    @op("needs_tensor", params=P, returns="metric")
    def needs_tensor(p, ctx):
        """Needs a tensor."""

    with pytest.raises(RegistryError, match="unknown type 'tensor'"):
        collect([*builtin_modules(), _module("fam", needs_tensor=needs_tensor)])


def test_a_type_declared_twice_is_a_registry_error():
    with pytest.raises(RegistryError, match="value type 'data' is declared twice"):
        collect([*builtin_modules(), _module("fam", DATA=value_type("data", "again"))])


def test_expc_types_lists_declared_types(run_cli):
    code, out, _ = run_cli("types")
    assert code == 0
    assert "split[T]" in out and ".train: T; .test: T; kinds: data" in out
    assert "model  a model (weights and config)" in out and "arithmetic: algebra" in out
    code, out, _ = run_cli("types", "metric")
    assert code == 0 and out.splitlines()[1].strip() == ".value: number; kinds: eval"
    code, _, err = run_cli("types", "metirc")
    assert code == 2 and "did you mean 'metric'" in err


def test_the_store_decodes_artifacts_by_the_registry(tmp_path):
    from expc.interpreter.store import Store
    from expc.runtime.data.values import TextData

    classes = load_registry().types.artifact_classes()
    assert classes["data"] is TextData
    store = Store(tmp_path / "s", classes)
    tmp = store.new_tmp("ab" * 20)
    value = TextData.write(tmp, ["a", "b"], source="test")
    store.commit("ab" * 20, tmp, value)
    back = store.load("ab" * 20)
    assert isinstance(back, TextData) and back.examples() == ["a", "b"]


def test_every_declared_type_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "GRAMMAR.md").read_text(encoding="utf-8")
    t = load_registry().types
    for name, vt in t.declared.items():
        shown = f"{name}[{', '.join(vt.params)}]" if vt.params else name
        assert f"`{shown}`" in doc or f"`{name}`" in doc, f"type {shown} is not in GRAMMAR.md"
