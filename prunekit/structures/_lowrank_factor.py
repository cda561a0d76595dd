"""Build the two-layer factorization of a rank-``r`` layer.

With ``W = U Σ Vᵀ`` (thin SVD of the ``out × (in·∏k)`` matrix) truncated to ``r`` terms,
``A = Σ_r^{1/2} V_rᵀ`` (``r × in·∏k``) and ``B = U_r Σ_r^{1/2}`` (``out × r``):

* ``nn.Linear(in, out)`` → ``Linear(in, r, bias=False)`` then ``Linear(r, out)``;
* ``nn.ConvNd(in, out, k)`` → ``ConvNd(in, r, k)`` (same stride, padding, dilation,
  padding mode, no bias) then a ``1×…×1`` ``ConvNd(r, out)`` with the original bias.

``B (A x) + b = W_r x + b``: the pair computes exactly what the layer computes with its
rank-``r`` weight ``W_r`` (up to float rounding). Cost per output position drops from
``out·n`` to ``r·(n + out)`` multiply-accumulates (``n = in·∏k``).
"""

from __future__ import annotations

import torch
from torch import nn


def factored_shapes(module: nn.Module, rank: int) -> nn.Sequential:
    """The empty (uninitialized-weights) pair for ``module`` at ``rank``."""
    if isinstance(module, nn.Linear):
        first = nn.Linear(module.in_features, rank, bias=False)
        second = nn.Linear(rank, module.out_features, bias=module.bias is not None)
    elif isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        if module.groups != 1:
            raise ValueError(f"grouped convolution (groups={module.groups}) is not factored")
        cls = type(module)
        first = cls(module.in_channels, rank, module.kernel_size, stride=module.stride,
                    padding=module.padding, dilation=module.dilation, bias=False,
                    padding_mode=module.padding_mode)
        second = cls(rank, module.out_channels, 1, bias=module.bias is not None)
    else:
        raise TypeError(f"cannot factor a {type(module).__name__}")
    w = module.weight
    return nn.Sequential(first, second).to(device=w.device, dtype=w.dtype)


@torch.no_grad()
def factor_layer(module: nn.Module, rank: int) -> nn.Sequential:
    """``nn.Sequential(first, second)`` computing ``module`` with its rank-``rank`` weight."""
    w = module.weight.detach()
    mat = w.reshape(w.shape[0], -1)
    if not 1 <= rank <= min(mat.shape):
        raise ValueError(f"rank must be in [1, {min(mat.shape)}], got {rank}")
    u, s, vt = torch.linalg.svd(mat.to(torch.float64), full_matrices=False)
    root = s[:rank].sqrt()
    a = root[:, None] * vt[:rank]
    b = u[:, :rank] * root[None, :]
    pair = factored_shapes(module, rank)
    first, second = pair[0], pair[1]
    first.weight.copy_(a.reshape(first.weight.shape).to(w.dtype))
    second.weight.copy_(b.reshape(second.weight.shape).to(w.dtype))
    if module.bias is not None:
        second.bias.copy_(module.bias.detach())
    pair.train(module.training)
    return pair


def truncated(module: nn.Module, rank: int) -> torch.Tensor:
    """The rank-``rank`` truncation ``W_r`` of the weight, in the weight's shape."""
    w = module.weight.detach()
    u, s, vt = torch.linalg.svd(w.reshape(w.shape[0], -1).to(torch.float64),
                                full_matrices=False)
    return ((u[:, :rank] * s[:rank]) @ vt[:rank]).reshape(w.shape).to(w.dtype)


def cost(module: nn.Module, rank: int | None = None) -> int:
    """Weight elements (= MACs per output position): ``out·n`` or ``r·(n + out)``."""
    w = module.weight
    out, n = w.shape[0], w[0].numel()
    return out * n if rank is None else rank * (n + out)
