"""The dataset value: an Artifact (declared as the `data` value type in runtime/ops/data.py, which is how
the store decodes it). Cheap to import: pydantic only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from expc.runtime.api import Artifact


class TextData(Artifact):
    """A dataset of text examples, stored as `file` inside its directory: one JSON string per line
    (JSON so that an example may hold newlines and any Unicode). `source` says where it came from."""

    tag = "data"
    file: str = "examples.jsonl"
    n: int = 0
    n_bytes: int = 0  # UTF-8 size of all examples together
    source: str = ""

    @property
    def file_path(self) -> Path:
        return self.path / self.file

    def examples(self) -> list[str]:
        with open(self.file_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    @classmethod
    def write(cls, out_dir: Path, examples: Iterable[str], source: str, file: str = "examples.jsonl") -> "TextData":
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        n = n_bytes = 0
        with open(out_dir / file, "w", encoding="utf-8") as f:
            for ex in examples:
                f.write(json.dumps(ex, ensure_ascii=False))
                f.write("\n")
                n += 1
                n_bytes += len(ex.encode("utf-8"))
        return cls(path=out_dir, file=file, n=n, n_bytes=n_bytes, source=source)
