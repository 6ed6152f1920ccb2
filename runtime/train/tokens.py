"""Tokenization and packing, shared by `finetune`, `loss` and `perplexity` so that they agree.

Packing: every example is encoded and followed by a separator token (byte 10, "\\n", for the byte
tokenizer; the tokenizer's EOS token, else its encoding of "\\n", for a Hugging Face one), and the
results are concatenated into one token stream. A *window* is `context + 1` consecutive tokens of that
stream: the model reads the first `context` and predicts the last `context`.

- Training samples `batch` windows per step at uniformly random offsets (a seeded torch.Generator),
  so short datasets are not cut at fixed boundaries.
- Evaluation tiles the stream with windows at offsets 0, context, 2·context, ... (the last one may be
  shorter), so every token after the first is predicted exactly once, each with the longest context the
  tiling allows. The loss is the mean over those `len(stream) - 1` predictions.

The model directory records its tokenizer in `expc_tokenizer.json` ({"kind": "bytes"} or
{"kind": "hf"} with the tokenizer files beside it), so evaluation uses what training used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from expc.runtime.api import OpError

TOKENIZER_FILE = "expc_tokenizer.json"
BYTE_SEP = 10  # "\n"


@dataclass
class Tokenizer:
    kind: str  # "bytes" | "hf"
    hf: Any = None  # a transformers tokenizer when kind == "hf"

    @property
    def vocab_size(self) -> int:
        return 256 if self.kind == "bytes" else len(self.hf)

    def separator(self) -> list[int]:
        if self.kind == "bytes":
            return [BYTE_SEP]
        if self.hf.eos_token_id is not None:
            return [self.hf.eos_token_id]
        return self.hf.encode("\n", add_special_tokens=False)

    def stream(self, examples: list[str]) -> torch.Tensor:
        """The packed token stream of a dataset (int64, on the CPU)."""
        if self.kind == "bytes":
            if not examples:
                return torch.zeros(0, dtype=torch.int64)
            data = bytearray("\n".join(examples).encode("utf-8") + b"\n")
            return torch.frombuffer(data, dtype=torch.uint8).to(torch.int64)
        sep = self.separator()
        ids: list[int] = []
        for ids_ex in self.hf(examples, add_special_tokens=False)["input_ids"]:
            ids.extend(ids_ex)
            ids.extend(sep)
        return torch.tensor(ids, dtype=torch.int64)

    def record(self) -> dict:
        return {"kind": self.kind}

    def save(self, model_dir: Path) -> None:
        (Path(model_dir) / TOKENIZER_FILE).write_text(json.dumps(self.record()) + "\n")
        if self.kind == "hf":
            self.hf.save_pretrained(str(model_dir))


def load_hf_tokenizer(path: str, field: str = "tokenizer") -> Tokenizer:
    from transformers import AutoTokenizer

    p = Path(path)
    if not p.is_dir():
        raise OpError(f"{path}: no such tokenizer directory", field=field, hint='use "bytes" or a local directory')
    try:
        return Tokenizer("hf", AutoTokenizer.from_pretrained(str(p), local_files_only=True))
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: cannot load a Hugging Face tokenizer: {e}", field=field) from None


def tokenizer_of(model_dir: Path, vocab_size: int) -> Tokenizer:
    """The tokenizer recorded in a model directory. A directory without a record (a model made
    elsewhere) uses the Hugging Face tokenizer files in it, else bytes if its vocabulary allows."""
    model_dir = Path(model_dir)
    rec_path = model_dir / TOKENIZER_FILE
    if rec_path.exists():
        kind = json.loads(rec_path.read_text()).get("kind", "bytes")
    elif (model_dir / "tokenizer.json").exists() or (model_dir / "tokenizer_config.json").exists():
        kind = "hf"
    else:
        kind = "bytes"
    if kind == "hf":
        return load_hf_tokenizer(str(model_dir), field="model")
    if vocab_size < 256:
        raise OpError(f"the model's vocabulary has {vocab_size} tokens, too few for byte-level text", field="model")
    return Tokenizer("bytes")


def check_stream(stream: torch.Tensor, context: int, what: str, field: str = "data") -> None:
    if stream.numel() < context + 1:
        raise OpError(
            f"{what} has {stream.numel()} tokens, fewer than context + 1 = {context + 1}",
            field=field,
            hint="use more data or a shorter context",
        )


def sample_windows(stream: torch.Tensor, batch: int, context: int, gen: torch.Generator) -> torch.Tensor:
    """`batch` windows of `context + 1` tokens at random offsets: shape (batch, context + 1)."""
    starts = torch.randint(0, stream.numel() - context, (batch,), generator=gen)
    return stream[starts[:, None] + torch.arange(context + 1)]


def tiled_windows(stream: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The evaluation tiling: full windows (n, context + 1) and the shorter last window (or None)."""
    n_pred = stream.numel() - 1
    n_full = n_pred // context
    full = stream[torch.arange(n_full)[:, None] * context + torch.arange(context + 1)]
    rest = n_pred - n_full * context
    tail = stream[n_full * context :] if rest > 0 else None
    return full, tail
