"""Layers seen as ``y = W x + b``: one adapter per layer kind, in a registry.

Second-order scores and least-squares reconstruction both need a layer as a matrix
product: the rows ``x`` its weight multiplies (a linear layer's input features, a
convolution's unfolded patches), the outputs ``y`` per row, and the weight as an
``(out, in)`` matrix, per convolution group. :func:`form_of` returns that view of a module,
or None for a layer it does not know (a transposed convolution, a Conv3d): callers leave
such layers alone and say so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LinearForm:
    """A layer as ``y = W x + b`` per group.

    Attributes
    ----------
    module
        The layer.
    in_dim
        The weight dim indexing input features (1 for ``nn.Linear`` and convs, 0 for
        Hugging Face ``Conv1D``).
    feature_dim
        The dim of the layer's *input tensor* carrying the features (-1 or 1).
    block
        Columns of the row matrix per input feature (``kh·kw`` for a conv, else 1): input
        channel ``c`` owns columns ``c·block … c·block + block − 1``.
    groups
        Convolution groups: rows and outputs split into ``groups`` equal, independent parts.
    """

    module: nn.Module
    in_dim: int
    feature_dim: int
    block: int = 1
    groups: int = 1

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """The input as an ``(n, in_features · block)`` matrix (all groups side by side)."""
        if self.block == 1 and self.feature_dim == -1:
            return x.reshape(-1, x.shape[-1])
        return _unfold(self.module, x)

    def outputs(self, y: torch.Tensor) -> torch.Tensor:
        """The output as an ``(n, out_features)`` matrix, rows aligned with :meth:`rows`."""
        if self.feature_dim == -1:
            return y.reshape(-1, y.shape[-1])
        return y.movedim(1, -1).reshape(-1, y.shape[1])

    def weight(self) -> torch.Tensor:
        """``W`` as ``(out_features, in_features_per_group · block)`` (a detached view)."""
        w = self.module.weight.detach()
        if self.in_dim == 0:
            return w.t()
        return w.reshape(w.shape[0], -1)

    @property
    def bias(self) -> torch.Tensor | None:
        return getattr(self.module, "bias", None)

    def set(self, w: torch.Tensor, b: torch.Tensor | None) -> None:
        """Write ``W`` (as :meth:`weight` returns it) and the bias back, in place."""
        param = self.module.weight
        new = w.t() if self.in_dim == 0 else w.reshape(param.shape)
        with torch.no_grad():
            param.copy_(new.to(param.dtype))
            if b is not None and self.bias is not None:
                self.bias.copy_(b.to(self.bias.dtype))


def _pads(conv: nn.Module, spatial: tuple[int, ...]) -> list[int]:
    """``F.pad`` amounts (last dim first) reproducing the conv's own padding."""
    pad = conv.padding
    if isinstance(pad, str):
        if pad == "valid":
            return [0] * (2 * len(spatial))
        out = []
        for k, d in zip(reversed(conv.kernel_size), reversed(conv.dilation), strict=True):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return out
    return [p for p in reversed(pad) for _ in range(2)]


def _unfold(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Patches of a Conv1d/Conv2d input as rows: ``(N·L, C_in · prod(kernel))``."""
    one_d = x.dim() == 3
    pads = _pads(conv, tuple(x.shape[2:]))
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    if any(pads):
        x = F.pad(x, pads, mode=mode)
    kernel, dilation, stride = conv.kernel_size, conv.dilation, conv.stride
    if one_d:
        x = x.unsqueeze(2)
        kernel, dilation, stride = (1, *kernel), (1, *dilation), (1, *stride)
    cols = F.unfold(x, kernel, dilation=dilation, stride=stride)  # (N, C·k, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _linear(m: nn.Module) -> LinearForm:
    return LinearForm(m, in_dim=1, feature_dim=-1)


def _conv(m: nn.Module) -> LinearForm:
    k = 1
    for size in m.kernel_size:
        k *= size
    return LinearForm(m, in_dim=1, feature_dim=1, block=k, groups=m.groups)


def _hf_conv1d(m: nn.Module) -> LinearForm:
    return LinearForm(m, in_dim=0, feature_dim=-1)


def _is_conv(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv1d | nn.Conv2d) and not m.transposed


def _is_hf_conv1d(m: nn.Module) -> bool:
    return type(m).__name__ == "Conv1D" and getattr(m, "weight", None) is not None \
        and m.weight.dim() == 2


FORMS: list[tuple[Callable[[nn.Module], bool], Callable[[nn.Module], LinearForm]]] = [
    (lambda m: isinstance(m, nn.Linear), _linear),
    (_is_conv, _conv),
    (_is_hf_conv1d, _hf_conv1d),
]
"""``(matches, build)`` pairs, first match wins; append to support another layer kind."""


def form_of(module: nn.Module) -> LinearForm | None:
    """The :class:`LinearForm` of ``module``, or None for a layer kind not registered."""
    for matches, build in FORMS:
        if matches(module):
            return build(module)
    return None
