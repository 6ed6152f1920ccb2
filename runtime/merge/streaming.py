"""The streaming half of a merge, shared by its torch and numpy paths: a reader thread that fills a
ring of buffers with the operands' stored bytes chunk by chunk, a writer thread that appends finished
chunks to the output shards, and the loop between them (`stream`). No torch at import.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from expc.runtime.api import OpError
from expc.runtime.merge.safetensors_io import DTYPE_SIZES, OutSpec, ShardedWriter, TensorInfo, read_into

if TYPE_CHECKING:
    from expc.runtime.merge.engine import Task

QUEUE_DEPTH = 2
WRITE_DEPTH = 2  # finished chunks waiting for the writer thread


@dataclass
class Item:
    task: Task
    start: int  # element offset (bytes for copies)
    stop: int
    raw: dict[int, Any]  # operand -> uint8 buffer holding the stored bytes (torch, or numpy on the numpy path)


class Reader(threading.Thread):
    """Produces Items in order into a bounded queue, reusing a ring of buffers."""

    def __init__(self, tasks: list[Task], chunk_elems: int, pin: bool, use_numpy: bool = False):
        super().__init__(daemon=True, name="expc-merge-reader")
        self.tasks, self.chunk_elems, self.pin = tasks, chunk_elems, pin
        self.use_numpy = use_numpy  # numpy buffers (the torch-free path) instead of torch tensors
        self.q: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.stop = threading.Event()
        # Item k uses ring slot k % R; R = depth + 2 so a slot is refilled only after its item is done.
        self.ring: list[dict[int, Any]] = [{} for _ in range(QUEUE_DEPTH + 2)]
        self.fds: dict[Path, int] = {}

    def _fd(self, path: Path) -> int:
        if path not in self.fds:
            self.fds[path] = os.open(path, os.O_RDONLY)
        return self.fds[path]

    def _empty(self, nbytes: int, pin: bool = False):
        if self.use_numpy:
            return np.empty(nbytes, dtype=np.uint8)
        import torch

        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=pin)

    def _slot_buf(self, slot: int, j: int, nbytes: int):
        buf = self.ring[slot].get(j)
        if buf is None or len(buf) < nbytes:
            buf = self._empty(max(nbytes, self.chunk_elems * 4), pin=self.pin)
            self.ring[slot][j] = buf
        return buf[:nbytes]

    def _read(self, info: TensorInfo, start: int, nbytes: int, buf) -> None:
        read_into(self._fd(info.file), buf if self.use_numpy else buf.numpy(), info.offset + start)

    def items(self):
        k = 0
        for t in self.tasks:
            if t.kind == "copy":
                info = t.inputs[t.source]
                step = self.chunk_elems * 4
                for s in range(0, max(info.nbytes, 1), step):
                    n = min(step, info.nbytes - s)
                    buf = self._slot_buf(k % len(self.ring), t.source, n)
                    self._read(info, s, n, buf)
                    yield Item(t, s, s + n, {t.source: buf})
                    k += 1
            elif t.kind == "chunk":
                for s in range(0, max(t.numel, 1), self.chunk_elems):
                    e = min(s + self.chunk_elems, t.numel)
                    raw = {}
                    for j, info in t.inputs.items():
                        size = DTYPE_SIZES[info.dtype]
                        buf = self._slot_buf(k % len(self.ring), j, (e - s) * size)
                        self._read(info, s * size, (e - s) * size, buf)
                        raw[j] = buf
                    yield Item(t, s, e, raw)
                    k += 1
            else:
                raw = {}
                for j, info in t.inputs.items():
                    buf = self._empty(info.nbytes)
                    self._read(info, 0, info.nbytes, buf)
                    raw[j] = buf
                yield Item(t, 0, t.numel, raw)
                k += 1

    def run(self):
        try:
            for item in self.items():
                while not self.stop.is_set():
                    try:
                        self.q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    return
            self.q.put(None)
        except BaseException as e:  # handed to the main thread, which raises it
            self.q.put(e)
        finally:
            self.close()

    def close(self) -> None:
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            os.close(fd)


def _drain(q: queue.Queue):
    while True:
        item = q.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


class _Writer(threading.Thread):
    """Writes finished tensors in order while the main thread computes the next chunk: on a CPU the
    page-cache writes take as long as the arithmetic, and this overlaps them (the reader thread
    overlaps the reads the same way). The main thread hands over arrays it will not touch until
    RING more chunks have passed (see _Scratch)."""

    def __init__(self, writer: ShardedWriter):
        super().__init__(daemon=True, name="expc-merge-writer")
        self.writer = writer
        self.q: queue.Queue = queue.Queue(maxsize=WRITE_DEPTH)
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            item = self.q.get()
            try:
                if item is None:
                    return
                if self.error is None:
                    self.writer.write(*item)
            except BaseException as e:  # raised in the main thread by put() or finish()
                self.error = e
            finally:
                self.q.task_done()

    def put(self, name: str, data) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((name, data))

    def flush(self) -> None:
        """Wait until everything handed over is written (before writing a buffer the reader reuses)."""
        self.q.join()
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        self.q.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def stream(tasks: list[Task], writer: ShardedWriter, reader: Reader, ctx, compute, rotate, as_array) -> None:
    """The loop both paths share: chunks from `reader` in order, each computed by `compute(item)` (the
    array to write, checked finite) and handed to the writer thread, whose result buffer `rotate()`
    then retires; a copied tensor (`as_array(raw)`) is written directly. On any exit, both threads
    are stopped and nothing queued is written."""
    total = sum(OutSpec(t.name, t.out_dtype, t.shape).nbytes for t in tasks)
    advance = ctx.progress(total, "merge", unit="B")
    out_thread = _Writer(writer)
    reader.start()
    out_thread.start()
    finished = False
    try:
        for item in _drain(reader.q):
            ctx.check_cancelled()
            t = item.task
            if t.kind == "copy":
                # the reader refills this buffer soon: write it now, after what is queued
                data = as_array(item.raw[t.source])
                out_thread.flush()
                writer.write(t.name, data)
                advance(data.size)
                continue
            data = compute(item)
            out_thread.put(t.name, data)
            rotate()
            advance(data.nbytes)
        out_thread.finish()
        finished = True
    finally:
        if not finished:
            out_thread.error = out_thread.error or RuntimeError("merge stopped")  # drop what is queued
            out_thread.q.put(None)
            out_thread.join()
        reader.stop.set()
        while reader.is_alive():
            try:
                reader.q.get(timeout=0.05)
            except queue.Empty:
                pass
        reader.join()


def not_finite(name: str, bad: int) -> None:
    raise OpError(
        f"tensor {name!r} of the merged model has {bad} NaN or infinite value(s)",
        field="expr",
        hint="a division by a near-zero weight, an overflow of the output dtype, or NaN in an input",
    )
