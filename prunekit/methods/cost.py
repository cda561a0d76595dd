"""Analytic cost of a model whose channels are partly removed: MACs or parameters.

For every weight ``W`` of a Linear/Conv layer, ``MACs(W) = numel(W) · positions`` where
``positions`` is the number of output positions per sample (``H·W`` for a 2-d conv, the
token count for a Linear), recorded once with forward hooks. When channels are removed
along some dimensions, ``numel`` shrinks by the kept fraction of each cut dimension:

``cost = Σ_W positions(W) · numel(W) · Π_d alive_d(W) / size_d(W)``

which is exact for Linear and (grouped) Conv layers. For ``kind="params"`` every
parameter counts with ``positions = 1``. Bias/BatchNorm MACs are ignored (a few percent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from prunekit.methods.masks import named_dense_parameters

COST_KINDS = ("macs", "params")


def positions_per_weight(model: nn.Module, example_inputs: Sequence | torch.Tensor) -> dict:
    """``{weight name: output positions per sample}`` for every ≥2-d weight, by one forward."""
    found: dict[str, float] = {}
    hooks = []

    def make_hook(name: str, out_channels: int):
        def hook(_mod, _inp, out):
            if isinstance(out, torch.Tensor) and out.ndim >= 1 and out.shape[0] > 0:
                found[name] = out[0].numel() / out_channels
        return hook

    for mod_name, module in model.named_modules():
        w = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        if w is None:
            orig = getattr(getattr(module, "parametrizations", None), "weight", None)
            w = getattr(orig, "original", None)
        if w is not None and w.ndim >= 2:
            name = f"{mod_name}.weight" if mod_name else "weight"
            hooks.append(module.register_forward_hook(make_hook(name, w.shape[0])))
    inputs = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return found


class CostModel:
    """Cost of the model as a function of which channels are alive along each cut dimension.

    Parameters
    ----------
    shapes : mapping name -> shape
        Every parameter counted.
    positions : mapping name -> float
        Multiplier per parameter (output positions for MACs, 1 for params).
    """

    def __init__(self, shapes: Mapping[str, tuple], positions: Mapping[str, float]) -> None:
        self.shapes = dict(shapes)
        self.positions = dict(positions)

    @classmethod
    def build(cls, model: nn.Module, kind: str, example_inputs=None) -> CostModel:
        """Build from a model; ``kind="macs"`` needs ``example_inputs`` (one forward pass)."""
        if kind not in COST_KINDS:
            raise ValueError(f"kind must be one of {COST_KINDS}, got {kind!r}")
        shapes = {n: tuple(p.shape) for n, p in named_dense_parameters(model)}
        if kind == "params":
            return cls(shapes, dict.fromkeys(shapes, 1.0))
        if example_inputs is None:
            raise ValueError("example_inputs is required for a MAC cost model")
        pos = positions_per_weight(model, example_inputs)
        return cls({n: shapes[n] for n in pos if n in shapes}, pos)

    def cost(self, removed: Mapping[tuple[str, int], int] | None = None) -> float:
        """Total cost when ``removed[(param, dim)]`` channels are gone along ``dim``."""
        removed = removed or {}
        total = 0.0
        for name, shape in self.shapes.items():
            frac = 1.0
            for (pname, dim), count in removed.items():
                if pname == name:
                    frac *= max(shape[dim] - count, 0) / shape[dim]
            numel = 1
            for s in shape:
                numel *= s
            total += self.positions[name] * numel * frac
        return total
