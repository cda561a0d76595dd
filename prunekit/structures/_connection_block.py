"""A dense block with explicit connections: what a pruned DenseNet block becomes.

``ConnectedDenseBlock`` holds the original block's children under their original names
(so ``state_dict`` names do not change; a layer removed whole becomes a None entry) plus
the surviving connections:

* ``inputs[key]`` — the sources whose features layer ``key`` reads, in block order
  (``"input"`` is the block's input, other names are layer keys);
* ``outputs`` — the sources concatenated into the block's output.

Its forward is the dense forward restricted to those connections::

    feats = {"input": x}
    for key in order:                 # layers removed whole are skipped
        feats[key] = layer(cat(feats[s] for s in inputs[key]))
    return cat(feats[s] for s in outputs)

With all connections present this is exactly torchvision's ``_DenseBlock`` (layers are
called with the list of features, ``call="list"``) or a user block that concatenates
before calling each layer (``call="tensor"``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

INPUT = "input"


def resolve(root: nn.Module, path: str) -> nn.Module | None:
    """The submodule at dotted ``path`` below ``root``; None if it (or a parent) is None."""
    mod: nn.Module | None = root
    for part in path.split("."):
        if mod is None:
            return None
        mod = mod._modules.get(part)
    return mod


class ConnectedDenseBlock(nn.Module):
    """Dense block with a connection list (see module docstring).

    Parameters
    ----------
    children : mapping of str to nn.Module
        The old block's children (layers, or containers holding them), by their names;
        they are shared, not copied.
    order : list of str
        Every original layer path (relative to the block, e.g. ``"denselayer1"`` or
        ``"layers.0"``), in execution order. A layer removed whole is a None entry.
    inputs : dict
        ``{layer path: [source, ...]}`` for the surviving layers.
    outputs : list of str
        Sources concatenated into the output.
    call : {"list", "tensor"}
        Call layers with the list of features or with their concatenation.
    """

    def __init__(self, children: Mapping[str, nn.Module | None], order: list[str],
                 inputs: Mapping[str, list[str]], outputs: list[str],
                 call: str = "list") -> None:
        super().__init__()
        if call not in ("list", "tensor"):
            raise ValueError(f"call must be 'list' or 'tensor', got {call!r}")
        for name, child in children.items():
            self._modules[name] = child
        self.order = list(order)
        self.inputs = {k: list(v) for k, v in inputs.items()}
        self.outputs = list(outputs)
        self.call = call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = {INPUT: x}
        for key in self.order:
            if key not in self.inputs:
                continue
            layer = resolve(self, key)
            ins = [feats[s] for s in self.inputs[key]]
            feats[key] = layer(ins if self.call == "list" else torch.cat(ins, 1))
        return torch.cat([feats[s] for s in self.outputs], 1)

    def extra_repr(self) -> str:
        n = sum(len(v) for v in self.inputs.values()) + len(self.outputs)
        return f"connections={n}, call={self.call!r}"
