"""Layers whose *input* carries a group's channels: where to read heads' activations.

Some channels are never the whole output of a module: attention heads are computed by
functional ops and only exist, merged, as the input of the output projection. For such
groups activation statistics are read at the input of a consuming layer, whose weight
member says which input features belong to each channel. One entry per layer kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class InputSpec:
    """The weight dim indexing input features, and the input dim that carries them."""

    weight_dim: int
    input_dim: int


def _is_plain_conv(module: nn.Module) -> bool:
    conv = nn.modules.conv._ConvNd
    return isinstance(module, conv) and not module.transposed and module.groups == 1


_CONSUMERS: list[tuple[Callable[[nn.Module], bool], InputSpec]] = [
    (lambda m: isinstance(m, nn.Linear), InputSpec(weight_dim=1, input_dim=-1)),
    (_is_plain_conv, InputSpec(weight_dim=1, input_dim=1)),
    # Hugging Face Conv1D (GPT-2): weight is (in_features, out_features)
    (lambda m: type(m).__name__ == "Conv1D", InputSpec(weight_dim=0, input_dim=-1)),
]


def input_spec(module: nn.Module) -> InputSpec | None:
    """How ``module``'s input features map to its weight, or None for other layers."""
    for matches, spec in _CONSUMERS:
        if matches(module):
            return spec
    return None
