"""Model constructors (kind `model`): a randomly initialised GPT-2 built from a config."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from expc.runtime.registry import IsPath, Params, op
from expc.runtime.values import ModelDir
from expc.runtime.types import value_type

def _model_summary(v) -> str | None:
    """`GPT2LMHeadModel, 7,664 parameters, float32` (large counts as 124M, 1.5B)."""
    n = getattr(v, "n_params", None)
    if not isinstance(n, int):
        return None
    count = next((f"{n / s:.3g}{u}" for u, s in (("B", 1e9), ("M", 1e6)) if n >= s), f"{n:,}")
    parts = [getattr(v, "architecture", "") or "model", f"{count} parameters", getattr(v, "dtype", "")]
    return ", ".join(p for p in parts if p)


MODEL = value_type("model", "a model (weights and config)", kinds={"model", "train", "merge"}, artifact=ModelDir,
                   algebra="algebra", summary=_model_summary)
TOKENIZER = value_type("tokenizer", "a tokenizer")


class Gpt2Params(Params):
    layers: int = Field(ge=1, le=96, description="transformer blocks")
    width: int = Field(ge=8, le=16384, description="embedding size (n_embd)")
    heads: int = Field(ge=1, le=256, description="attention heads; must divide width")
    context: int = Field(ge=2, le=1_000_000, description="longest input in tokens (n_positions)")
    vocab: int = Field(256, ge=2, description="vocabulary size (256 for bytes; a tokenizer's size if given)")
    seed: int = Field(0, description="initialisation seed")
    # a directory path (its content keys the node) or the keyword "bytes"
    tokenizer: Annotated[str, IsPath("dir", keywords=("bytes",))] = Field(
        "bytes", description='"bytes" (UTF-8 bytes, the default) or the path of a local Hugging Face tokenizer directory'
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout of embeddings, attention and residuals")

    @field_validator("heads")
    @classmethod
    def _divides_width(cls, heads: int, info: ValidationInfo) -> int:
        width = info.data.get("width")
        if width is not None and width % heads:
            raise ValueError(f"heads = {heads} must divide width = {width}")
        return heads


@op("gpt2", params=Gpt2Params, kinds={"model"}, returns="model", version=1)
def gpt2(p: Gpt2Params, ctx) -> ModelDir:
    """A transformers GPT-2 with random weights, saved as a Hugging Face directory (safetensors)."""
    from expc.runtime.api import OpError, node_seed
    from expc.runtime.train.modeling import build_gpt2, save_model
    from expc.runtime.train.tokens import Tokenizer, load_hf_tokenizer

    if p.tokenizer == "bytes":
        tok = Tokenizer("bytes")
        if p.vocab < 256:
            raise OpError(f"vocab = {p.vocab} is too small for byte-level tokens (256)", field="vocab")
        vocab = p.vocab
    else:
        tok = load_hf_tokenizer(p.tokenizer)
        vocab = max(p.vocab, tok.vocab_size) if "vocab" in p.model_fields_set else tok.vocab_size
        if vocab < tok.vocab_size:
            raise OpError(f"vocab = {p.vocab} is smaller than the tokenizer's {tok.vocab_size}", field="vocab")
    model = build_gpt2(p.layers, p.width, p.heads, p.context, vocab, node_seed(p.seed, ctx.seed), p.dropout)
    return save_model(model, ctx.out_dir, tok)
