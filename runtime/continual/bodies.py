"""Backbones with switchable adapters: what every continual method trains on.

A body maps a batch of examples to features (what a task's head reads) under its active adapter (None:
the bare backbone). Two kinds:

- `NativeBody`: a classifier of runtime/nets (mlp, cnn). Its output layer is set aside (the source
  head, what LEEP reads); an adapter is a residual bottleneck (Houlsby et al. 2019: x + up(relu(down(x))),
  `up` starting at zero so a new adapter starts as the identity) after each layer whose name matches
  `at` ("hidden": every hidden layer, "hidden.1": that one, "conv": every conv block, 1x1 convolutions
  there). A few lines of torch, hooked on the layers' outputs.
- `PeftBody`: a transformers model (a GPT-2 of `gpt2(...)` or any causal LM directory). Integer features
  are read as token ids (digits' pixels 0..16 are 64 tokens), the features are the mean of the last
  hidden states; adapters are peft LoRA adapters of rank `bottleneck` on the modules whose names end
  with `at` (e.g. "c_attn"), switched with peft's set_adapter.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from expc.runtime.continual.layers import matches, no_layer


class NoLayer(ValueError):
    """No layer of the backbone matches an adapter's `at`."""


class Bottleneck(nn.Module):
    def __init__(self, width: int, bottleneck: int, conv: bool):
        super().__init__()
        make = (lambda i, o: nn.Conv2d(i, o, 1)) if conv else nn.Linear
        self.down = make(width, bottleneck)
        self.up = make(bottleneck, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return x + self.up(F.relu(self.down(x)))


class NativeBody(nn.Module):
    kind = "native"

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.source_head = net.head
        net.head = nn.Identity()
        self.adapters = nn.ModuleDict()
        self.active: str | None = None
        self.width = self.source_head.in_features
        self._hooked: set[str] = set()

    def layer_names(self) -> list[str]:
        return [f"conv.{i}" for i in range(len(self.net.conv))] + [f"hidden.{i}" for i in range(len(self.net.hidden))]

    def _layer(self, name: str) -> nn.Module:
        kind, i = name.split(".")
        return getattr(self.net, kind)[int(i)]

    def check_at(self, at: str) -> list[str]:
        problem = no_layer(at, self.layer_names())
        if problem:
            raise NoLayer(problem)
        return [n for n in self.layer_names() if matches(n, at)]

    def add_adapter(self, name: str, bottleneck: int, at: str, seed: int) -> None:
        mods = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for layer in self.check_at(at):
                m = self._layer(layer)
                conv = isinstance(m, nn.Conv2d)
                mods[layer.replace(".", "_")] = Bottleneck(m.out_channels if conv else m.out_features, bottleneck, conv)
                if layer not in self._hooked:
                    m.register_forward_hook(self._hook(layer.replace(".", "_")))
                    self._hooked.add(layer)
        device = next(self.net.parameters()).device
        self.adapters[name] = nn.ModuleDict(mods).to(device)

    def _hook(self, key: str):
        def hook(module, args, out):
            if self.active is None or key not in self.adapters[self.active]:
                return None
            return self.adapters[self.active][key](out)

        return hook

    def set_adapter(self, name: str | None) -> None:
        self.active = name

    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        return list(self.adapters[name].parameters())

    def adapter_state(self, name: str) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.adapters[name].state_dict().items()}

    def load_adapter_state(self, name: str, state: dict[str, torch.Tensor]) -> None:
        self.adapters[name].load_state_dict(state)

    def remove_adapter(self, name: str) -> None:
        del self.adapters[name]
        if self.active == name:
            self.active = None

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.source_head(self.features(x))


class PeftBody(nn.Module):
    kind = "transformers"

    def __init__(self, model: nn.Module, vocab: int, context: int):
        super().__init__()
        self.model = model
        self.peft = None
        self.vocab, self.context = vocab, context
        self.width = int(model.config.hidden_size)
        self.active: str | None = None
        self.source_head = None  # a language model's own head predicts tokens: no source labels

    def check_inputs(self, X: torch.Tensor) -> str | None:
        flat = X.reshape(len(X), -1)
        if flat.shape[1] > self.context:
            return f"examples of {flat.shape[1]} features are longer than the model's context ({self.context} tokens)"
        if not torch.equal(flat, flat.round()) or flat.min() < 0 or flat.max() >= self.vocab:
            return (f"a transformers backbone reads features as token ids: integers in [0, {self.vocab}), got values "
                    f"in [{float(flat.min()):g}, {float(flat.max()):g}]")
        return None

    def check_at(self, at: str) -> list[str]:
        names = [n for n, m in self.model.named_modules() if n and (n == at or n.endswith("." + at))]
        if not names:
            leaves = sorted({n.rsplit(".", 1)[-1] for n, m in self.model.named_modules()
                             if n and not list(m.children())})
            raise NoLayer(f'no module of the backbone matches at = "{at}" (module names end with: {", ".join(leaves)})')
        return names

    def add_adapter(self, name: str, bottleneck: int, at: str, seed: int) -> None:
        from peft import LoraConfig, get_peft_model

        self.check_at(at)
        config = LoraConfig(r=bottleneck, lora_alpha=bottleneck, target_modules=[at], lora_dropout=0.0,
                            fan_in_fan_out=self.model.config.model_type == "gpt2", bias="none")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.peft is None:
                self.peft = get_peft_model(self.model, config, adapter_name=name)
            else:
                self.peft.add_adapter(name, config)
        self.set_adapter(name)

    def set_adapter(self, name: str | None) -> None:
        self.active = name
        if self.peft is not None and name is not None:
            self.peft.base_model.set_adapter(name)

    def _adapter_items(self, name: str):
        tag = f".{name}."
        owner = self.peft if self.peft is not None else self.model
        return [(n, p) for n, p in owner.named_parameters() if "lora_" in n and tag in n]

    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        return [p for _, p in self._adapter_items(name)]

    def adapter_state(self, name: str) -> dict[str, torch.Tensor]:
        tag = f".{name}."
        return {n.replace(tag, ".#."): p.detach().clone() for n, p in self._adapter_items(name)}

    def load_adapter_state(self, name: str, state: dict[str, torch.Tensor]) -> None:
        tag = f".{name}."
        with torch.no_grad():
            for n, p in self._adapter_items(name):
                p.copy_(state[n.replace(tag, ".#.")])

    def remove_adapter(self, name: str) -> None:
        others = [a for a in self.peft.peft_config if a != name]
        if others and name in self.peft.base_model.active_adapters:
            self.peft.base_model.set_adapter(others[-1])  # peft warns when the active adapter is deleted
        self.peft.base_model.delete_adapter(name)
        if self.active == name:
            self.active = None

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.model.named_parameters() if "lora_" not in n]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.reshape(len(x), -1).long()
        if self.peft is not None and self.active is None:
            with self.peft.disable_adapter():
                h = self.model(input_ids=ids).last_hidden_state
        else:
            h = self.model(input_ids=ids).last_hidden_state
        return h.mean(1)


def load_body(model, device: str) -> NativeBody | PeftBody:
    """The body of a `model` value: a classifier of runtime/nets, or a transformers model directory."""
    import json
    from pathlib import Path

    path = Path(getattr(model, "path", model))
    config = json.loads((path / "config.json").read_text())
    if "expc_classifier" in config:
        from expc.runtime.nets.load import load_classifier

        net, _ = load_classifier(model, device)
        return NativeBody(net).to(device)
    from transformers import AutoModel

    base = AutoModel.from_pretrained(str(path))
    context = int(getattr(base.config, "n_positions", None) or getattr(base.config, "max_position_embeddings", 0)
                  or math.inf)
    return PeftBody(base, int(base.config.vocab_size), context).to(device)
