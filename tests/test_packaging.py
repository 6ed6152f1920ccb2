"""Every package folder of the pipeline is installed: pyproject.toml lists each one (an editable install
only maps the listed packages, so a missing one imports here and fails for users)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = {conf["package-dir"][p] for p in conf["packages"]}
    folders = {str(d.parent.relative_to(ROOT)) for top in ("expc", "spec", "interpreter", "runtime")
               for d in (ROOT / top).rglob("__init__.py")}
    assert folders - listed == set(), "package folders missing from pyproject.toml's packages/package-dir"
    assert set(conf["packages"]) == set(conf["package-dir"])
