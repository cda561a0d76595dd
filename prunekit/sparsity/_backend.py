"""The few array operations whose spelling differs between numpy and torch.

Everything else in the prox code uses operators (``*``, ``-``, ``abs``, ``@``) that both
libraries share. Torch is never imported here: a tensor can only exist if the caller
already imported torch, so ``sys.modules`` tells us without paying the import.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .groups import Groups


def is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def relu(x: Any) -> Any:
    """``max(x, 0)`` elementwise."""
    return x.clamp(min=0) if is_torch(x) else np.maximum(x, 0)


def sign(x: Any) -> Any:
    return x.sign() if is_torch(x) else np.sign(x)


def sqrt(x: Any) -> Any:
    return x.sqrt() if is_torch(x) else np.sqrt(x)


def where(cond: Any, a: Any, b: Any) -> Any:
    if is_torch(cond):
        import torch

        return torch.where(cond, a, b)
    return np.where(cond, a, b)


def copy(x: Any) -> Any:
    return x.clone() if is_torch(x) else np.array(x, copy=True)


def like(values: Any, x: Any) -> Any:
    """``values`` (numpy or scalar) converted to the array type, dtype and device of ``x``."""
    if is_torch(x):
        import torch

        if is_torch(values):
            return values.to(device=x.device, dtype=x.dtype)
        return torch.as_tensor(np.asarray(values), dtype=x.dtype, device=x.device)
    if is_torch(values):
        return values.detach().cpu().numpy().astype(x.dtype, copy=False)
    return np.asarray(values, dtype=x.dtype if np.issubdtype(x.dtype, np.floating) else float)


def to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if is_torch(x) else np.asarray(x)


def row_sqnorms(x: Any) -> Any:
    """Sum of squares of each entry along axis 0 (over all trailing axes)."""
    sq = x * x
    if sq.ndim == 1:
        return sq
    return sq.reshape(sq.shape[0], -1).sum(1)


def expand_rows(scale: Any, x: Any) -> Any:
    """Reshape a per-row vector so that it broadcasts against ``x`` along axis 0."""
    return scale.reshape((-1,) + (1,) * (x.ndim - 1))


def group_sqnorms(x: Any, groups: Groups) -> Any:
    """``‖x_g‖²`` for every group (rows ``groups[g]`` of ``x``, all trailing axes)."""
    rows = row_sqnorms(x)
    if is_torch(x):
        import torch

        idx, gid = groups.torch_index(x.device)
        out = torch.zeros(groups.n_groups, dtype=rows.dtype, device=rows.device)
        return out.index_add_(0, gid, rows[idx])
    return np.add.reduceat(rows[groups.indices], groups.ptr[:-1])


def scale_groups(x: Any, scale: Any, groups: Groups) -> Any:
    """Copy of ``x`` with the rows of group ``g`` multiplied by ``scale[g]``.

    Requires disjoint groups; rows outside every group are copied unchanged.
    """
    out = copy(x)
    if is_torch(x):
        idx, gid = groups.torch_index(x.device)
        out[idx] = x[idx] * expand_rows(scale[gid], x)
    else:
        idx = groups.indices
        out[idx] = x[idx] * expand_rows(scale[groups.group_ids], x)
    return out


def svd(x: Any) -> tuple[Any, Any, Any]:
    """Thin SVD, batched over leading axes."""
    if is_torch(x):
        import torch

        return torch.linalg.svd(x, full_matrices=False)
    return np.linalg.svd(x, full_matrices=False)
