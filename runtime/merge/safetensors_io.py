"""The safetensors format read from headers and written as a stream. No torch here.

A safetensors file is `u64 little-endian N`, `N bytes of JSON header`, then the raw tensor bytes; the
header maps each name to {dtype, shape, data_offsets: [begin, end]} relative to the end of the header.
Reading the header alone tells the names, shapes and dtypes of a model, which is what the pre-load
checks need; reading tensor bytes with `os.preadv` into reusable buffers keeps peak memory bounded
(a memory map would count every touched page in the process's RSS until it is unmapped).
Writing needs the header first, so the writer is given every tensor's dtype and shape up front
(known from the input headers) and then receives the bytes in order, in as many pieces as wanted.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})
# The language's dtype names <-> safetensors' names.
DTYPE_NAMES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}
DTYPE_OF_ST = {v: k for k, v in DTYPE_NAMES.items()}

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
_MAX_HEADER = 100 * 1024 * 1024


class FormatError(Exception):
    """A safetensors file or index that cannot be read; the message names the file."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors name: "F32", "BF16", ...
    shape: tuple[int, ...]
    file: Path
    offset: int  # absolute byte offset of the data in `file`
    nbytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES


def read_header(path: Path) -> tuple[list[TensorInfo], dict]:
    """The tensors of one safetensors file, in data order, and its __metadata__."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise FormatError(f"{path}: not a safetensors file (only {size} bytes)")
            n = int.from_bytes(head, "little")
            if n > _MAX_HEADER or 8 + n > size:
                raise FormatError(f"{path}: not a safetensors file (header length {n} bytes, file {size} bytes)")
            raw = f.read(n)
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: the safetensors header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: the safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    base = 8 + n
    out = []
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path}: malformed header entry for tensor {name!r}") from None
        if dtype not in DTYPE_SIZES:
            raise FormatError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        if end - begin != math.prod(shape) * DTYPE_SIZES[dtype] or begin < 0:
            raise FormatError(f"{path}: tensor {name!r}: data_offsets {begin}..{end} do not match {dtype}{list(shape)}")
        if base + end > size:
            raise FormatError(
                f"{path}: truncated: tensor {name!r} ends at byte {base + end} but the file has {size} bytes"
            )
        out.append(TensorInfo(name, dtype, shape, path, base + begin, end - begin))
    out.sort(key=lambda t: t.offset)
    return out, meta


def weight_files(model_dir: Path) -> tuple[list[Path], Path | None]:
    """The safetensors files of a model directory (from the index when there is one) and the index."""
    model_dir = Path(model_dir)
    index = model_dir / INDEX_NAME
    if index.is_file():
        try:
            data = json.loads(index.read_text())
            wmap = data["weight_map"]
            names = list(dict.fromkeys(wmap.values()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise FormatError(f"{index}: not a valid safetensors index ({e})") from None
        files = [model_dir / n for n in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise FormatError(f"{index}: lists shard {missing[0]!r}, which is missing from {model_dir}")
        return files, index
    return sorted(model_dir.glob("*.safetensors")), None


def model_tensors(model_dir: Path) -> list[TensorInfo]:
    """Every tensor of a model directory, in storage order (shard by shard, offset by offset)."""
    files, index = weight_files(model_dir)
    if not files:
        raise FormatError(f"{model_dir}: no *.safetensors weights")
    tensors: list[TensorInfo] = []
    seen: dict[str, Path] = {}
    for f in files:
        infos, _ = read_header(f)
        for t in infos:
            if t.name in seen:
                raise FormatError(f"{f}: tensor {t.name!r} is also stored in {seen[t.name].name}")
            seen[t.name] = f
        tensors.extend(infos)
    if index is not None:
        wmap = json.loads(index.read_text())["weight_map"]
        for name, fname in wmap.items():
            if name not in seen:
                raise FormatError(f"{index}: maps tensor {name!r} to {fname}, which does not contain it")
    return tensors


def read_into(fd: int, buf, offset: int) -> None:
    """Fill the writable buffer `buf` (a memoryview of bytes) from `fd` at `offset`."""
    view = memoryview(buf).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise FormatError(f"unexpected end of file while reading {len(view)} bytes at offset {offset}")
        done += n


@dataclass(frozen=True)
class OutSpec:
    name: str
    dtype: str  # safetensors name
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_SIZES[self.dtype]


def plan_shards(specs: list[OutSpec], max_shard_bytes: int) -> list[list[OutSpec]]:
    """Split tensors, in order, into shards of at most max_shard_bytes (a bigger tensor gets its own)."""
    shards: list[list[OutSpec]] = [[]]
    size = 0
    for s in specs:
        if shards[-1] and size + s.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(s)
        size += s.nbytes
    return shards if shards[0] else []


def shard_names(n: int) -> list[str]:
    if n == 1:
        return [SINGLE_NAME]
    return [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


def encode_header(specs: list[OutSpec], metadata: dict[str, str]) -> bytes:
    header: dict = {"__metadata__": metadata}
    pos = 0
    for s in specs:
        header[s.name] = {"dtype": s.dtype, "shape": list(s.shape), "data_offsets": [pos, pos + s.nbytes]}
        pos += s.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as the reference writer does
    return len(raw).to_bytes(8, "little") + raw


class ShardedWriter:
    """Writes a model's tensors, in the given order, to shards (+ index when more than one).

    `write(name, data)` appends bytes to tensor `name`; it may be called several times per tensor
    (chunks), but tensors must come in order and each must receive exactly its size.
    """

    def __init__(self, out_dir: Path, specs: list[OutSpec], max_shard_bytes: int, metadata: dict | None = None):
        self.out_dir = Path(out_dir)
        self.shards = plan_shards(specs, max_shard_bytes)
        self.names = shard_names(len(self.shards))
        self.metadata = {"format": "pt", **(metadata or {})}
        self._order = [(i, s) for i, shard in enumerate(self.shards) for s in shard]
        self._pos = 0  # index into _order of the tensor being written
        self._written = 0  # bytes written to that tensor
        self._shard = -1
        self._f = None

    def _open(self, i: int) -> None:
        if self._f is not None:
            self._f.close()
        self._shard = i
        self._f = open(self.out_dir / self.names[i], "wb")
        self._f.write(encode_header(self.shards[i], self.metadata))

    def write(self, name: str, data) -> None:
        shard, spec = self._order[self._pos]
        if spec.name != name:
            raise RuntimeError(f"writer expected tensor {spec.name!r}, got {name!r}")
        if shard != self._shard:
            self._open(shard)
        n = memoryview(data).nbytes
        if self._written + n > spec.nbytes:
            raise RuntimeError(f"tensor {name!r}: {self._written + n} bytes written, expected {spec.nbytes}")
        self._f.write(data)
        self._written += n
        if self._written == spec.nbytes:
            self._pos += 1
            self._written = 0

    def close(self) -> list[str]:
        """Finish the files (and the index); returns the shard file names."""
        if self._pos != len(self._order):
            missing = self._order[self._pos][1].name
            raise RuntimeError(f"writer closed before tensor {missing!r} was written")
        if self._f is not None:
            self._f.close()
            self._f = None
        if not self.shards:  # a model without tensors still gets a (valid, empty) file
            (self.out_dir / SINGLE_NAME).write_bytes(encode_header([], self.metadata))
            return [SINGLE_NAME]
        if len(self.shards) > 1:
            index = {
                "metadata": {"total_size": sum(s.nbytes for _, s in self._order)},
                "weight_map": {s.name: self.names[i] for i, s in self._order},
            }
            (self.out_dir / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
        return list(self.names)

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
