"""Device resolution: the only place the interpreter learns whether a GPU exists (imports torch)."""

from __future__ import annotations


def resolve(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
