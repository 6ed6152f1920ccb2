"""The recurrent language model of `rnn_lm(...)`: an embedding, stacked cells compiled from their trees
(expc.runtime.genomes.cell_module), a linear head; saved as a model directory (config.json with the
architecture, the cell's trees included; model.safetensors; the byte tokenizer record). Nothing is
unpickled.

Held-out loss (`loss`, `perplexity`): with `context` given, windows of `context` tokens tiled as for
a transformer (expc.runtime.train.tokens), each read from a zero state; without it, the stream is
cut into `batch` contiguous stretches (the same tiling with windows of ceil((n - 1) / batch)
tokens) and the state is carried through each, as recurrent LMs are usually evaluated. Either way
every token after the first is predicted exactly once.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from expc.runtime.api import OpError
from expc.runtime.genomes.cell_module import CellModule
from expc.runtime.nets.modeldir_io import load_weights, save_model_dir
from expc.runtime.train.tokens import Tokenizer, tiled_windows
from expc.runtime.values import ModelDir

FORMAT = 1
ARCHITECTURE = "ExpcRnnLM"
CHUNK = 256  # time steps per forward pass when a stretch is long (bounds the logits' memory)


class RnnLM(nn.Module):
    def __init__(self, net: dict):
        super().__init__()
        self.net = dict(net)
        embed, hidden, vocab = int(net["embed"]), int(net["hidden"]), int(net["vocab"])
        self.embed = nn.Embedding(vocab, embed)
        self.layers = nn.ModuleList([CellModule(net["cell"], embed if i == 0 else hidden, hidden)
                                     for i in range(int(net["layers"]))])
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor, state: list | None = None):
        """tokens (B, T) -> logits (B, T, vocab), and each layer's last state."""
        x = self.embed(tokens).transpose(0, 1)  # (T, B, E): the cells run over time
        states = []
        for i, layer in enumerate(self.layers):
            x, s = layer(x, state[i] if state is not None else None)
            states.append(s)
        return self.head(x.transpose(0, 1)), states


def build(net: dict, seed: int) -> RnnLM:
    """The network with its initialization drawn from `seed` (the global RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RnnLM(net)


def is_rnn_lm(model) -> bool:
    """Whether a model directory holds an rnn_lm (its config.json says so)."""
    path = getattr(model, "path", model)
    if not isinstance(path, (str, Path)):
        return False
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "expc_rnn_lm" in config


def save(net: RnnLM, training: dict, out_dir: Path) -> ModelDir:
    config = {"architectures": [ARCHITECTURE], "expc_rnn_lm": FORMAT, "net": net.net,
              "vocab_size": int(net.net["vocab"]), "torch_dtype": "float32", "training": training}
    model = save_model_dir(net, config, out_dir)
    Tokenizer("bytes").save(model.path)
    return model


def load(model, device: str = "cpu", field: str = "model") -> tuple[RnnLM, dict]:
    path = Path(getattr(model, "path", model))
    try:
        config = json.loads((path / "config.json").read_text())
        tensors = load_file(str(path / "model.safetensors"))
    except (OSError, ValueError) as e:
        raise OpError(f"{path}: cannot read the recurrent LM: {e}", field=field) from None
    if config.get("expc_rnn_lm") != FORMAT:
        raise OpError(f"{path}: not an rnn_lm model directory of format {FORMAT}", field=field)
    net = RnnLM(config["net"])
    load_weights(net, tensors, path, field)
    return net.to(device).eval(), config


@torch.inference_mode()
def stream_loss(net: RnnLM, stream: torch.Tensor, context: int | None, batch: int, device: str) -> tuple[float, int]:
    """(mean next-token cross-entropy in nats, predicted tokens) over the tiling of the module
    docstring; the loss is summed in float64."""
    was_training = net.training
    net.eval()
    n_pred = stream.numel() - 1
    window = context if context is not None else max(1, math.ceil(n_pred / batch))
    full, tail = tiled_windows(stream, window)
    total = torch.zeros((), dtype=torch.float64, device=device)
    for i in range(0, full.shape[0], batch):
        total += _windows_loss(net, full[i : i + batch].to(device))
    if tail is not None:
        total += _windows_loss(net, tail[None].to(device))
    net.train(was_training)
    return float(total) / n_pred, n_pred


def _windows_loss(net: RnnLM, w: torch.Tensor) -> torch.Tensor:
    """Summed loss of windows (B, L + 1), read from a zero state in chunks of CHUNK steps."""
    state, total = None, torch.zeros((), dtype=torch.float64, device=w.device)
    for s in range(0, w.shape[1] - 1, CHUNK):
        inputs, targets = w[:, s : s + CHUNK], w[:, s + 1 : s + 1 + CHUNK]
        inputs = inputs[:, : targets.shape[1]]
        logits, state = net(inputs, state)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum").double()
    return total
