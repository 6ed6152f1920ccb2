"""`expc run --save NAME=DIR` links the stored files out instead of copying them, and no edit in DIR
can corrupt the store: stored files are read-only, and a result whose files were written through a
link anyway (root ignores permission bits) is never served again: its node reruns."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from conftest import write

PROGRAM = """\
experiment save_demo { seed = 0 }
data sums = arithmetic(n = 40, digits = 2)
data parts = split(sums, test = 0.25, seed = 1)
data head = take(parts.train, 5)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path / "p.exp", PROGRAM)
    return tmp_path


def stored_dir(store: Path, run_id: int, node: str) -> Path:
    return (store / "runs" / str(run_id) / node).resolve()  # the run's link to the node's directory


def files(d: Path) -> dict[str, Path]:
    return {str(p.relative_to(d)): p for p in sorted(d.rglob("*")) if p.is_file()}


def test_save_links_the_stored_files_on_the_same_file_system(run_cli, project):
    store, out = project / ".expc", project / "out"
    code, said, err = run_cli("run", project / "p.exp", "--cache", store, "--save", f"head={out}")
    assert code == 0, err
    stored, saved = files(stored_dir(store, 1, "head")), files(out)
    assert set(saved) == set(stored) - {"value.json", ".stored.json"}  # the store's bookkeeping stays
    assert "hard-linked to the store, read-only" in said or "cloned (copy-on-write)" in said
    for name, p in saved.items():
        assert p.read_bytes() == stored[name].read_bytes()
        st, sst = p.stat(), stored[name].stat()
        if "hard-linked" in said:  # one file, two names: nothing was copied
            assert (st.st_dev, st.st_ino) == (sst.st_dev, sst.st_ino) and st.st_nlink >= 2
        assert not sst.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)  # stored files are read-only


def test_a_write_through_the_saved_copy_does_not_change_the_store(run_cli, project):
    store, out = project / ".expc", project / "out"
    code, _, err = run_cli("run", project / "p.exp", "--cache", store, "--save", f"head={out}")
    assert code == 0, err
    name, saved = next(iter(files(out).items()))
    original = saved.read_bytes()
    try:
        with open(saved, "r+b") as f:  # an in-place edit, as safetensors' save_file does
            f.write(b"corrupted")
        wrote = True
    except PermissionError:  # not root: the read-only mode stopped it
        wrote = False
    code, out_text, err = run_cli("run", project / "p.exp", "--cache", store)
    assert code == 0, err
    ran = "run    head" in err
    assert ran == wrote  # written through the link: the result is not served again, head reruns
    assert "run    sums" not in err and "run    parts" not in err  # and nothing else does
    assert (stored_dir(store, 2, "head") / name).read_bytes() == original
    assert not any(p.name.endswith(".part") for p in (store / "tmp").iterdir())
    assert not list((store / "tmp").iterdir())  # the corrupted result was removed


def test_save_copies_where_it_cannot_link(run_cli, project, monkeypatch):
    import fcntl

    def cross_device(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)  # DIR on another file system
    monkeypatch.setattr(fcntl, "ioctl", cross_device)
    store, out = project / ".expc", project / "out"
    code, said, err = run_cli("run", project / "p.exp", "--cache", store, "--save", f"head={out}")
    assert code == 0, err
    assert "copied)" in said and "hard-linked" not in said
    stored = files(stored_dir(store, 1, "head"))
    for name, p in files(out).items():
        assert p.read_bytes() == stored[name].read_bytes()
        assert p.stat().st_ino != stored[name].stat().st_ino
        assert p.stat().st_mode & stat.S_IWUSR  # a copy is the user's own, writable


def test_save_replaces_what_dir_held(run_cli, project):
    store, out = project / ".expc", project / "out"
    write(out / "old.txt", "stale")
    code, _, err = run_cli("run", project / "p.exp", "--cache", store, "--save", f"head={out}")
    assert code == 0, err
    assert not (out / "old.txt").exists() and files(out)
    # saving again over the links leaves the store as it was
    before = {n: p.read_bytes() for n, p in files(stored_dir(store, 1, "head")).items()}
    code, _, err = run_cli("run", project / "p.exp", "--cache", store, "--save", f"head={out}")
    assert code == 0, err
    assert {n: p.read_bytes() for n, p in files(stored_dir(store, 2, "head")).items()} == before
