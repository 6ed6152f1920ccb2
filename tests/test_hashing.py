"""Input files are hashed once per version: digests are kept in the store's SQLite by (path, device,
inode, size, mtime_ns), like git's index. Real runs of torch-free data operators; the hash calls are
counted at the one function that reads files for their digest."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import blake3
import pytest

from conftest import write
from expc.interpreter import hashing
from expc.interpreter.hashing import FileHasher
from expc.interpreter.runs import Runs
from expc.interpreter.session import Session

PROGRAM = """\
experiment hash_demo { seed = 0 }
data words = text("words.txt")
data parts = split(words, test = 0.25, seed = 1)
data head = take(parts.train, 5)
"""
HOUR_AGO = time.time() - 3600


def age(path: Path, seconds_ago: float) -> None:
    """Give a file an mtime in the past (a file written just now is 'racy' and not kept in the cache)."""
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path / "words.txt", "\n".join(f"word {i}" for i in range(40)) + "\n")
    age(tmp_path / "words.txt", 3600)
    write(tmp_path / "p.exp", PROGRAM)
    return tmp_path


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Every file read for its digest, in order."""
    seen: list[str] = []
    real = hashing._digest_file

    def counting(path: str, size: int) -> str:
        seen.append(Path(path).name)
        return real(path, size)

    monkeypatch.setattr(hashing, "_digest_file", counting)
    return seen


def run(project: Path) -> tuple[list[str], dict[str, str]]:
    """(nodes that ran, key of every node) of one run in a fresh session, as a new process would."""
    s = Session.open(project / "p.exp", [], project / ".expc")
    r = s.run()
    assert r.status == "ok", r.failure
    keys = {n: k for n, k, _ in r.trail}
    s.runs.close()
    return sorted(r.ran), keys


def test_a_rerun_with_unchanged_inputs_hashes_nothing(project, reads):
    ran, keys = run(project)
    assert ran == ["head", "parts", "words"] and reads == ["words.txt"]
    reads.clear()
    again, keys2 = run(project)
    assert again == [] and reads == []  # the digest came from the store's SQLite
    assert keys2 == keys
    db = sqlite3.connect(str(project / ".expc" / "runs.sqlite"))
    (path, algo, digest), = db.execute("SELECT path, algo, digest FROM file_hashes").fetchall()
    assert path == str(project / "words.txt") and algo == "blake3"
    assert digest == blake3.blake3((project / "words.txt").read_bytes()).hexdigest()


def test_a_touched_but_identical_file_is_rehashed_and_keeps_its_key(project, reads):
    _, keys = run(project)
    age(project / "words.txt", 1800)  # `touch`: a new mtime, the same bytes
    reads.clear()
    ran, keys2 = run(project)
    assert reads == ["words.txt"]  # its signature changed: read again ...
    assert ran == [] and keys2 == keys  # ... to the same digest: nothing reruns
    reads.clear()
    assert run(project)[0] == [] and reads == []  # and the new signature is kept


def test_a_changed_file_changes_its_key(project, reads):
    _, keys = run(project)
    text = (project / "words.txt").read_text()
    (project / "words.txt").write_text(text.replace("word 1\n", "word 9\n", 1))  # same size
    age(project / "words.txt", 1800)
    ran, keys2 = run(project)
    assert ran == ["head", "parts", "words"]
    assert keys2["words"] != keys["words"]


def test_a_file_written_just_now_is_hashed_again_next_run(project, reads):
    # A file written within the last RACY_NS could change again within the same mtime tick with the
    # same size: its digest serves this process but is not kept.
    write(project / "words.txt", "".join(f"new {i}\n" for i in range(40)))
    run(project)
    reads.clear()
    run(project)
    assert reads == ["words.txt"]


def test_digests_depend_on_content_only(tmp_path):
    """Keys stay stable across machines: a digest is BLAKE3 of the bytes; a directory's combines its
    files' relative paths and digests, not where it is or its files' stat."""
    big = os.urandom(hashing.MMAP_BYTES + 12345)  # hashed through a memory map, on every core
    for where in ("a", "b/c"):
        write(tmp_path / where / "model" / "config.json", "{}")
        (tmp_path / where / "model" / "weights.bin").write_bytes(big)
    h = FileHasher()
    assert h.file(str(tmp_path / "a" / "model" / "weights.bin")) == blake3.blake3(big).hexdigest()
    assert h.path(str(tmp_path / "a" / "model")) == h.path(str(tmp_path / "b" / "c" / "model"))
    assert h.files_hashed == 4 and h.bytes_hashed == 2 * (len(big) + 2)
    (tmp_path / "b" / "c" / "model" / "config.json").write_text("{ }")
    assert h.path(str(tmp_path / "a" / "model")) != h.path(str(tmp_path / "b" / "c" / "model"))


def test_the_cache_is_keyed_by_path_device_inode_size_and_mtime(tmp_path, reads):
    runs = Runs(tmp_path / "store")
    f = write(tmp_path / "f.txt", "abc")
    age(f, 60)
    digest = FileHasher(runs).file(str(f))
    assert FileHasher(runs).file(str(f)) == digest and reads == ["f.txt"]
    # the same bytes under a new inode (a file replaced by a rename, as editors save) are read again
    write(tmp_path / "g.txt", "abc").replace(f)
    age(f, 60)
    assert FileHasher(runs).file(str(f)) == digest and reads == ["f.txt", "f.txt"]
    runs.close()
