"""Per-layer before/after statistics of a pruned model, matched to the dense one by name.

Structured pruning keeps module names (surgery slices tensors in place), so the dense and
pruned models are compared module by module: width (output channels, features, heads …),
parameters and MACs before → after. A module present only in the dense model was removed
(e.g. a pruned residual block).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from prunekit.inputs import Inputs
from prunekit.measure.counting import macs_by_module, params_by_module

WidthFn = Callable[[nn.Module], int]
WIDTH_OF: dict[type, WidthFn] = {}


def register_width(*types: type) -> Callable[[WidthFn], WidthFn]:
    """Register how to read the prunable width of a module type."""

    def decorate(fn: WidthFn) -> WidthFn:
        for kind in types:
            WIDTH_OF[kind] = fn
        return fn

    return decorate


register_width(nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
               nn.ConvTranspose3d)(lambda m: m.out_channels)
register_width(nn.Linear, nn.Bilinear)(lambda m: m.out_features)
register_width(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d,
               nn.InstanceNorm2d, nn.InstanceNorm3d)(lambda m: m.num_features)
register_width(nn.GroupNorm)(lambda m: m.num_channels)
register_width(nn.LayerNorm)(lambda m: int(m.normalized_shape[-1]))
register_width(nn.Embedding)(lambda m: m.embedding_dim)
register_width(nn.MultiheadAttention)(lambda m: m.num_heads)


def width_of(module: nn.Module) -> int | None:
    """Registered width (walking the MRO), else the first dimension of ``weight``, else None."""
    for kind in type(module).__mro__:
        if kind in WIDTH_OF:
            return int(WIDTH_OF[kind](module))
    weight = getattr(module, "weight", None)
    return int(weight.shape[0]) if getattr(weight, "dim", lambda: 0)() > 0 else None


@dataclass
class LayerRow:
    """One module's statistics before and after pruning (``*_after`` None: removed)."""

    name: str
    kind: str
    width_before: int | None
    width_after: int | None
    params_before: int
    params_after: int | None
    macs_before: int
    macs_after: int | None

    @property
    def removed(self) -> bool:
        return self.params_after is None

    @property
    def kept_width(self) -> float | None:
        """``width_after / width_before`` (0 for a removed module)."""
        if self.removed:
            return 0.0
        if not self.width_before or self.width_after is None:
            return None
        return self.width_after / self.width_before

    @property
    def kept_params(self) -> float | None:
        """``params_after / params_before`` (0 for a removed module; None without params).

        Differs from the kept width when the layer's *inputs* were cut too: a convolution
        that keeps 62 of 64 filters but sees 4 of 64 input channels keeps 6 % of its weights.
        """
        return _kept(self.params_before, self.params_after)

    @property
    def kept_macs(self) -> float | None:
        """``macs_after / macs_before`` (0 for a removed module; None without MACs)."""
        return _kept(self.macs_before, self.macs_after)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kept_width": self.kept_width, "kept_params": self.kept_params,
                "kept_macs": self.kept_macs, "removed": self.removed}


def _kept(before: int, after: int | None) -> float | None:
    if after is None:
        return 0.0
    return after / before if before else None


def layer_stats(dense: nn.Module, pruned: nn.Module, example_inputs: Inputs,
                pruned_inputs: Inputs | None = None) -> list[LayerRow]:
    """Rows for every module that owns parameters or executes MACs, in dense-model order."""
    macs = (macs_by_module(dense, example_inputs),
            macs_by_module(pruned, example_inputs if pruned_inputs is None else pruned_inputs))
    params = params_by_module(dense), params_by_module(pruned)
    after = dict(pruned.named_modules())
    rows = []
    for name, module in dense.named_modules():
        if name not in params[0] and name not in macs[0]:
            continue
        other = after.get(name)
        rows.append(LayerRow(
            name=name or "(root)", kind=type(module).__name__,
            width_before=width_of(module), width_after=None if other is None else width_of(other),
            params_before=params[0].get(name, 0),
            params_after=None if other is None else params[1].get(name, 0),
            macs_before=macs[0].get(name, 0),
            macs_after=None if other is None else macs[1].get(name, 0),
        ))
    return rows


def rows_from_dicts(data: list[dict[str, Any]]) -> list[LayerRow]:
    """Rebuild rows saved with :meth:`LayerRow.to_dict` (derived keys are ignored)."""
    fields = LayerRow.__dataclass_fields__
    return [LayerRow(**{k: v for k, v in row.items() if k in fields}) for row in data]
