"""The shipped registry imports an operator family's module only when a program uses it, through
runtime/ops/_index.json, which must describe the ops modules as they are."""

from __future__ import annotations

import json
import subprocess
import sys

from expc.runtime import ops_index
from expc.runtime.registry import builtin_modules, collect, load_registry


def test_the_index_is_fresh():
    stored = json.loads(ops_index.INDEX.read_text(encoding="utf-8"))
    assert stored == ops_index.build_index(collect(builtin_modules())), (
        "runtime/ops changed: regenerate the index with `python -m expc.runtime.ops_index`")


def test_the_lazy_registry_declares_what_collect_finds():
    eager = collect(builtin_modules())
    lazy = load_registry()
    assert isinstance(lazy.ops, ops_index.LazyDeclarations)  # the index is trusted here
    assert lazy.names() == eager.names()
    assert sorted(lazy.types.declared) == sorted(eager.types.declared)
    for name in ("split", "fit", "pgd", "tpe"):
        assert lazy.get(name) is eager.get(name)
    assert lazy.get("no_such_op") is None and "no_such_op" not in lazy
    assert lazy.types.members("split[tensors]") == {"train": "tensors", "test": "tensors"}


def test_a_stale_index_is_not_trusted(monkeypatch):
    monkeypatch.setattr(ops_index, "sources_digest", lambda: "not the digest")
    assert ops_index.read_index() is None
    load_registry.cache_clear()
    try:
        assert isinstance(load_registry().ops, dict)  # every module imported, as collect() does
    finally:
        load_registry.cache_clear()


def test_checking_a_program_imports_only_the_families_it_uses(tmp_path):
    code = ("import json, sys; from expc.cli import main; rc = main(['check', 'examples/dem.exp']); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('expc.runtime.ops.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ops_index.OPS_DIR.parent.parent)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert {"expc.runtime.ops.data", "expc.runtime.ops.search", "expc.runtime.ops.merge"} <= loaded
    assert not loaded & {"expc.runtime.ops.attacks", "expc.runtime.ops.poet", "expc.runtime.ops.tensors"}
