"""Content hashes of the files a program reads, computed once per file version.

A node's key includes the content of the files it reads (expc.interpreter.planner), so every plan
needs their digests. Reading a 1 GB model for that on every run costs seconds, so digests are kept
the way git's index and DVC's state database keep them: by (path, device, inode, size, mtime_ns) in
the store's SQLite (expc.interpreter.runs, table file_hashes). A rerun with unchanged files reads no
file; a file touched but unchanged is read again and keeps its digest (and so its node's key); a
changed file gets a new digest.

The digest is BLAKE3 of the bytes (32 bytes, hex): cryptographic, multithreaded over a memory map for
large files, and the same on every machine (the (device, inode, mtime) signature is only the local
cache's key, never part of a node's key).

Racy files: a file written less than RACY_NS before it was hashed could be rewritten within the same
mtime tick with the same size, and the signature would not see it (git's "racily clean" entries).
Such a digest is used by this process but not kept in the cache; the next run hashes the file again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol

ALGORITHM = "blake3"
RACY_NS = 2_000_000_000  # covers coarse mtime clocks (FAT's 2 s, HFS+'s 1 s, ext4's jiffies)
MMAP_BYTES = 4 << 20  # from this size on, hash over a memory map with every core
WINDOW_BYTES = 64 << 20  # mapped at a time: as fast as mapping the whole file, and a 1 GB file does not
                         # add 1 GB to the process's resident set (max RSS) while it is hashed


class HashCache(Protocol):
    """Where digests outlive the process (expc.interpreter.runs.Runs implements it)."""

    def file_hash(self, path: str, dev: int, ino: int, size: int, mtime_ns: int, algo: str) -> str | None: ...

    def remember_file_hash(self, path: str, dev: int, ino: int, size: int, mtime_ns: int, algo: str,
                           digest: str) -> None: ...


def _digest_file(path: str, size: int) -> str:
    """BLAKE3 of a file's bytes (the only place a file is read for its hash)."""
    import blake3

    with open(path, "rb") as f:
        if size < MMAP_BYTES:
            return blake3.blake3(f.read()).hexdigest()
        import mmap

        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        size = os.fstat(f.fileno()).st_size
        for offset in range(0, size, WINDOW_BYTES):
            with mmap.mmap(f.fileno(), min(WINDOW_BYTES, size - offset), offset=offset,
                           access=mmap.ACCESS_READ) as window:
                h.update(window)
        return h.hexdigest()


class FileHasher:
    """Content hashes of files and directories, memoized in the process and, given a `cache`,
    across processes and runs. `files_hashed` / `bytes_hashed` / `seconds` count the files actually
    read (for tests and benchmarks)."""

    def __init__(self, cache: HashCache | None = None) -> None:
        self.cache = cache
        self._memo: dict[tuple[str, int, int, int, int], str] = {}
        self.files_hashed = 0
        self.bytes_hashed = 0
        self.seconds = 0.0

    def file(self, path: str) -> str:
        path = os.path.abspath(path)
        st = os.stat(path)
        sig = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        h = self._memo.get(sig)
        if h is not None:
            return h
        if self.cache is not None:
            h = self.cache.file_hash(*sig, ALGORITHM)
        if h is None:
            started = time.perf_counter()
            now_ns = time.time_ns()
            h = _digest_file(path, st.st_size)
            self.files_hashed += 1
            self.bytes_hashed += st.st_size
            self.seconds += time.perf_counter() - started
            after = os.stat(path)
            unchanged = (after.st_ino, after.st_size, after.st_mtime_ns) == sig[2:]
            if not unchanged:  # written while we read it: hash what is there on the next call
                return h
            if self.cache is not None and now_ns - st.st_mtime_ns > RACY_NS:
                self.cache.remember_file_hash(*sig, ALGORITHM, h)
        self._memo[sig] = h
        return h

    def path(self, path: str) -> str:
        """A file's digest, or a directory's: BLAKE3 over its files' relative paths and digests."""
        p = Path(path)
        if p.is_dir():
            import blake3

            d = blake3.blake3()
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                d.update(str(f.relative_to(p)).encode() + b"\0" + self.file(str(f)).encode())
            return d.hexdigest()
        return self.file(path)
