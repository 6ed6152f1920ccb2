"""Device resolution: the only place the interpreter learns whether a GPU exists (imports torch)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def resolve(device: str) -> str:
    """The device to use: "auto" is "cuda" where torch sees a GPU, else "cpu"; other names are kept."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def available(device: str) -> str | None:
    """None when the device can be used here, else why not (for a diagnostic before anything runs)."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return "CUDA is not available on this machine"
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return f"there is no GPU {index} (this machine has {torch.cuda.device_count()})"
    return None
