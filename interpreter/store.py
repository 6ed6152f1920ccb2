"""The content-addressed store: one directory per node key, written atomically.

    STORE/objects/ab/abcdef.../   value.json + the result's files (complete, never partial)
    STORE/tmp/<key>.<pid>.<n>/     a result being written (moved into objects/ by one rename)
    STORE/work/<key>/              persistent scratch for a key (checkpoints), removed on success
    STORE/runs.sqlite              the run registry (expc.interpreter.runs)

A directory under objects/ exists only if its value.json was written before the rename, so a run
killed at any point (kill -9) leaves only finished results there; leftovers in tmp/ are ignored and
swept. Values are JSON; artifacts are decoded from JSON by tag. Nothing is ever unpickled.

Stored files are read-only, so that `expc run --save` can hard-link them out instead of copying
(Store.export). Permission bits do not stop root, so each result also records the size and mtime of
its files (MANIFEST): a result whose files were written through such a link since is not served
again (Store.has is false) and its node reruns, replacing it.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path
from typing import Any

from expc.runtime.api import Artifact

_counter = itertools.count()
MANIFEST = ".stored.json"  # next to value.json: {"value.json": [inode, size, mtime_ns], "files": {rel: [size, mtime_ns]}}


class StoreError(Exception):
    pass


class Store:
    def __init__(self, root: str | Path, artifacts: dict[str, type] | None = None):
        """`artifacts`: tag -> Artifact class, from the registry's value types (registry.types)."""
        self.root = Path(root).resolve()
        self.artifacts = artifacts or {}
        self.objects = self.root / "objects"
        self.tmp_root = self.root / "tmp"
        self.work_root = self.root / "work"
        for d in (self.objects, self.tmp_root, self.work_root):
            d.mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------------------------------

    def path(self, key: str) -> Path:
        return self.objects / key[:2] / key

    def has(self, key: str) -> bool:
        """The result is stored, complete and unchanged since it was committed."""
        d = self.path(key)
        try:
            vst = os.stat(d / "value.json")
        except OSError:
            return False
        return _intact(d, vst)

    def new_tmp(self, key: str) -> Path:
        d = self.tmp_root / f"{key}.{os.getpid()}.{next(_counter)}"
        d.mkdir(parents=True)
        return d

    def work(self, key: str) -> Path:
        d = self.work_root / key
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- write -------------------------------------------------------------------------------------

    def commit(self, key: str, tmp: Path, value: Any) -> Any:
        """Encode value into tmp/value.json, then move tmp into place with one atomic rename.
        Returns the value as loaded from its final place."""
        encoded = encode(value, tmp)
        for name in ("value.json", MANIFEST):  # copies of an input's (an operator copied its directory)
            (tmp / name).unlink(missing_ok=True)
        files = _seal(tmp)
        data = json.dumps({"key": key, "value": encoded}, allow_nan=True)
        vtmp = tmp / "value.json.part"
        with open(vtmp, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(vtmp, 0o444)
        os.replace(vtmp, tmp / "value.json")
        vst = os.stat(tmp / "value.json")
        (tmp / MANIFEST).write_text(json.dumps({"value.json": [vst.st_ino, vst.st_size, vst.st_mtime_ns],
                                                "files": files}), encoding="utf-8")
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if self.has(key):  # another worker finished the same key first: theirs is as good
                shutil.rmtree(tmp, ignore_errors=True)
            elif (final / "value.json").is_file():  # written through a link since: ours replaces it
                self._replace(final, tmp, key)
            else:
                raise
        work = self.work_root / key
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
        return self.load(key)

    def _replace(self, final: Path, tmp: Path, key: str) -> None:
        stale = self.tmp_root / f"{key}.stale.{os.getpid()}.{next(_counter)}"
        try:
            os.rename(final, stale)
        except OSError:
            pass  # another worker set it aside first
        try:
            os.rename(tmp, final)
        except OSError:
            if not self.has(key):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)

    def discard(self, tmp: Path) -> None:
        shutil.rmtree(tmp, ignore_errors=True)

    def remove(self, key: str) -> bool:
        """Forget a stored result (a search trial's network under keep = "best"): moved aside with one
        rename, so readers see it whole or not at all, then deleted, with the key's scratch (a stopped
        computation's checkpoints). False when no result was stored."""
        shutil.rmtree(self.work_root / key, ignore_errors=True)
        final = self.path(key)
        gone = self.tmp_root / f"{key}.removed.{os.getpid()}.{next(_counter)}"
        try:
            os.rename(final, gone)
        except OSError:
            return False
        shutil.rmtree(gone, ignore_errors=True)
        return True

    # -- export ------------------------------------------------------------------------------------

    def export(self, src: Path, dest: Path, skip: tuple[str, ...] = ("value.json",)) -> dict[str, int]:
        """Put the files of `src` (a stored result's directory, or a directory in it) at `dest`, replacing
        what is there, and return how many files were put there each way: "cloned" (a copy-on-write
        reflink: an independent, writable copy), "linked" (a hard link to the store's read-only file), or
        "copied" (another file system, or a file that points outside the store). `skip`: names at the top
        of a result's directory to leave out (the store's own bookkeeping is always left out)."""
        src, dest = Path(src), Path(dest)
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        counts = {"cloned": 0, "linked": 0, "copied": 0}
        ways = ["cloned", "linked", "copied"] if sys.platform == "linux" else ["linked", "copied"]
        is_result = (src / "value.json").is_file()
        for dirpath, _, filenames in os.walk(src, followlinks=True):
            rel_dir = Path(dirpath).relative_to(src)
            (dest / rel_dir).mkdir(exist_ok=True)
            for name in sorted(filenames):
                if rel_dir == Path(".") and is_result and (name in skip or name == MANIFEST):
                    continue
                s, d = Path(dirpath) / name, dest / rel_dir / name
                real = Path(os.path.realpath(s))
                top_value = rel_dir == Path(".") and name == "value.json"
                if top_value or not real.is_relative_to(self.root):
                    # value.json is tiny; a symlink to the user's own file (pretrained) is theirs to keep
                    shutil.copyfile(real, d)
                    counts["copied"] += 1
                    continue
                _read_only(real)  # results stored before files were sealed
                counts[_put(real, d, ways)] += 1
        return {k: n for k, n in counts.items() if n}

    # -- read --------------------------------------------------------------------------------------

    def load(self, key: str) -> Any:
        d = self.path(key)
        try:
            data = json.loads((d / "value.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read stored result {key[:12]}: {e}") from None
        return decode(data["value"], d, self.artifacts)

    def sweep_tmp(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary directories left by killed runs (older than an hour: a live run's are young)."""
        n = 0
        now = time.time()
        for d in self.tmp_root.iterdir():
            try:
                if now - d.stat().st_mtime > older_than_s:
                    shutil.rmtree(d, ignore_errors=True)
                    n += 1
            except OSError:
                pass
        return n


def _seal(d: Path) -> dict[str, list[int]]:
    """Make a finished result's files read-only; their sizes and mtimes, by relative path. Symlinks (to
    the user's files) and files linked from elsewhere (nlink > 1) keep their modes."""
    files: dict[str, list[int]] = {}
    for dirpath, _, filenames in os.walk(d):
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_nlink == 1 and st.st_mode & 0o222:
                os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o222)
            files[os.path.relpath(p, d)] = [st.st_size, st.st_mtime_ns]
    return files


def _intact(d: Path, vst: os.stat_result) -> bool:
    """False when a file of the stored result `d` changed since it was committed (an edit through a hard
    link made by `--save`, as root or after a chmod). A result stored before manifests, or a copy of
    the store (value.json has another inode: nothing was linked out of the copy), is taken as it is."""
    try:
        m = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        ino, size, mtime = m["value.json"]
        files = m["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    if vst.st_ino != ino:
        return True
    if (vst.st_size, vst.st_mtime_ns) != (size, mtime):
        return False
    for rel, (size, mtime) in files.items():
        try:
            st = os.lstat(d / rel)
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            return False
    return True


def _read_only(p: Path) -> None:
    st = os.lstat(p)
    if st.st_nlink == 1 and st.st_mode & 0o222:
        os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o222)


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.EXDEV, errno.ENOSYS, errno.EPERM,
                errno.EBADF}


def _put(src: Path, dst: Path, ways: list[str]) -> str:
    """Clone, hard-link or copy one file; a way the file system refuses is dropped from `ways` (so a
    failed attempt is made once per export, not once per file)."""
    while True:
        way = ways[0]
        try:
            if way == "cloned":
                import fcntl

                with open(src, "rb") as fs, open(dst, "wb") as fd:
                    fcntl.ioctl(fd.fileno(), _FICLONE, fs.fileno())
            elif way == "linked":
                os.link(src, dst)
            else:
                shutil.copyfile(src, dst)
            return way
        except OSError as e:
            if way == "copied":
                raise
            if way == "cloned":
                dst.unlink(missing_ok=True)
            if e.errno == errno.EMLINK:  # this file has too many links: copy it, keep linking others
                shutil.copyfile(src, dst)
                return "copied"
            if e.errno not in _UNSUPPORTED:
                raise
            ways.pop(0)


def encode(value: Any, base: Path) -> Any:
    """JSON for a value; artifacts record their directory relative to the node's directory."""
    if isinstance(value, Artifact):
        try:
            rel = Path(value.path).resolve().relative_to(base.resolve())
        except ValueError:
            raise StoreError(
                f"an operator returned a {value.tag} artifact at {value.path}, outside its output directory"
            ) from None
        return {**value.to_json(), "$rel": str(rel)}
    if isinstance(value, dict):
        return {str(k): encode(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, base) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    raise StoreError(f"cannot store a value of type {type(value).__name__}; return JSON or an Artifact")


def decode(value: Any, base: Path, artifacts: dict[str, type] | None = None) -> Any:
    if isinstance(value, dict):
        if "$artifact" in value:
            body = {k: v for k, v in value.items() if k != "$rel"}
            return Artifact.from_json(body, base / value.get("$rel", "."), artifacts)
        return {k: decode(v, base, artifacts) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, base, artifacts) for v in value]
    return value
