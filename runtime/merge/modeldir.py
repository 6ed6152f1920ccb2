"""Hugging Face model directories: validating one (pretrained) and checking that several can be merged,
from config.json and safetensors headers only (no weight is read). No torch here.

Every problem is an OpError on the field path of the operand it concerns ("models.1", "path"), so the
diagnostic points at the operand's source text.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from expc.runtime.api import OpError
from expc.runtime.merge.safetensors_io import (
    DTYPE_OF_ST,
    INDEX_NAME,
    FormatError,
    TensorInfo,
    model_tensors,
    weight_files,
)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CONVERT_HINT = (
    "convert it once with transformers: "
    "AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(NEW_DIR, safe_serialization=True) "
    "(expc never unpickles weights: a pickle file can run arbitrary code)"
)
# Files of a model directory that are weights (not copied along with tokenizer files).
WEIGHT_SUFFIXES = (".safetensors", ".h5", ".msgpack", ".onnx", ".gguf", *PICKLE_SUFFIXES)


@dataclass(frozen=True)
class Operand:
    field: str  # params path, for diagnostics
    path: Path
    config: dict
    tensors: tuple[TensorInfo, ...]  # storage order

    def by_name(self) -> dict[str, TensorInfo]:
        return {t.name: t for t in self.tensors}

    @property
    def architecture(self) -> str:
        arch = self.config.get("architectures") or [""]
        return arch[0] if isinstance(arch, list) and arch else str(arch)


def read_config(path: Path, field: str) -> dict:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise OpError(f"{path} has no config.json: not a Hugging Face model directory", field=field)
    try:
        data = json.loads(cfg.read_text())
    except json.JSONDecodeError as e:
        raise OpError(f"{cfg}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}", field=field) from None
    except (OSError, UnicodeDecodeError) as e:
        raise OpError(f"{cfg}: cannot read: {e}", field=field) from None
    if not isinstance(data, dict):
        raise OpError(f"{cfg}: expected a JSON object", field=field)
    return data


def pickle_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def load_operand(path: Path, field: str) -> Operand:
    """Config and tensor headers of one model directory; any problem is an OpError on `field`."""
    path = Path(path)
    if not path.is_dir():
        raise OpError(f"model directory {path} does not exist", field=field)
    config = read_config(path, field)
    try:
        files, _ = weight_files(path)
        if not files:
            pickles = pickle_files(path)
            if pickles:
                raise OpError(
                    f"{pickles[0]} is a pickled PyTorch checkpoint; expc reads only safetensors weights",
                    field=field,
                    hint=CONVERT_HINT,
                )
            raise OpError(f"{path} has no *.safetensors weights", field=field)
        tensors = model_tensors(path)
    except FormatError as e:
        raise OpError(str(e), field=field) from None
    return Operand(field, path, config, tuple(tensors))


def _shape(s: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, s)) + "]"


def check_compatible(ops: list[Operand]) -> None:
    """Every operand must have the first one's architecture, tensor names and shapes."""
    first = ops[0]
    ref = first.by_name()
    for o in ops[1:]:
        if o.path == first.path:
            continue
        a0, a1 = first.architecture, o.architecture
        if a0 and a1 and a0 != a1:
            raise OpError(
                f"architectures differ: this model is {a1} but the first model is {a0}",
                field=o.field,
                hint="merging needs models of the same architecture (fine-tunes of one base model)",
            )
        names = o.by_name()
        missing = [n for n in ref if n not in names]
        if missing:
            raise OpError(
                f"tensor {missing[0]!r} of the first model is missing from this model"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                field=o.field,
            )
        extra = [n for n in names if n not in ref]
        if extra:
            raise OpError(
                f"this model has tensor {extra[0]!r}, which the first model lacks"
                + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""),
                field=o.field,
            )
        v0, v1 = first.config.get("vocab_size"), o.config.get("vocab_size")
        mismatched = [(t0, names[t0.name]) for t0 in first.tensors if t0.shape != names[t0.name].shape]
        if mismatched and v0 != v1 and isinstance(v0, int) and isinstance(v1, int):
            # The vocabulary is the usual root cause: explain it first, whichever tensor comes first.
            for t0, t1 in mismatched:
                if v1 in t1.shape and v0 in t0.shape:
                    raise OpError(
                        f"vocabulary sizes differ: this model has {v1} tokens, the first model {v0} "
                        f"(tensor {t0.name!r} is {_shape(t1.shape)} here, {_shape(t0.shape)} there)",
                        field=o.field,
                        hint="the models use different tokenizers or resized embeddings; merge models that "
                        "share the base model's vocabulary",
                    )
        if mismatched:
            t0, t1 = mismatched[0]
            raise OpError(
                f"tensor {t0.name!r} has shape {_shape(t1.shape)} in this model "
                f"but {_shape(t0.shape)} in the first model",
                field=o.field,
            )
        for t0 in first.tensors:
            t1 = names[t0.name]
            if t0.is_float != t1.is_float:
                raise OpError(
                    f"tensor {t0.name!r} is {t1.dtype} in this model but {t0.dtype} in the first model",
                    field=o.field,
                )


def check_known(dirs: list[Path | None], fields: list[str]) -> OpError | None:
    """`expc check`'s share of the checks above, with the same code and messages: the operands whose
    directory is known before anything runs (None: a model the program computes) are loaded from their
    headers and compared. One that cannot be loaded is left out (its pretrained() call reports it);
    without the first operand nothing is compared, since every message is relative to it."""
    operands: list[Operand] = []
    for i, (d, f) in enumerate(zip(dirs, fields)):
        try:
            operand = load_operand(d, f) if d is not None and d.is_dir() else None
        except OpError:
            operand = None
        if operand is not None:
            operands.append(operand)
        elif i == 0:
            return None
    try:
        check_compatible(operands)
    except OpError as e:
        return e
    return None


def main_dtype(tensors) -> str:
    """The most common floating dtype, in the language's names ("float32")."""
    counts = Counter(t.dtype for t in tensors if t.is_float)
    if not counts:
        return "float32"
    return DTYPE_OF_ST.get(counts.most_common(1)[0][0], "float32")


def link_pretrained(src: Path, out: Path, field: str = "path", warn=None) -> Operand:
    """Validate a model directory and fill `out` with symlinks to its files (no copy, no pickle)."""
    src = Path(src).resolve()
    operand = load_operand(src, field)
    files, index = weight_files(src)
    pickles = pickle_files(src)
    if pickles and warn is not None:
        warn(f"ignoring {', '.join(p.name for p in pickles)}: expc reads only the safetensors weights", field)
    out.mkdir(parents=True, exist_ok=True)
    keep = {f.name for f in files} | ({INDEX_NAME} if index else set())
    for p in sorted(src.iterdir()):
        if not p.is_file():
            continue
        if p.suffix in WEIGHT_SUFFIXES and p.name not in keep:
            continue
        if p.name.endswith(".json") and p.name == INDEX_NAME and p.name not in keep:
            continue
        dst = out / p.name
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        os.symlink(p, dst)
    return operand
