"""Value types shared by several operator families. No torch here."""

from __future__ import annotations

from pathlib import Path

from expc.runtime.api import Artifact


class ModelDir(Artifact):
    """A model as a Hugging Face directory: config.json, *.safetensors shards (with or without
    model.safetensors.index.json) and optional tokenizer files. Loadable by
    transformers.AutoModel*.from_pretrained(path). Nothing is ever unpickled."""

    tag = "model"
    architecture: str = ""  # config.architectures[0] when known
    dtype: str = "float32"
    n_params: int = 0

    def config_path(self) -> Path:
        return self.path / "config.json"
