"""N:M semi-structured sparsity (2:4 by default) and one small adapter to PyTorch's kernels.

An N:M mask keeps the ``n`` largest-magnitude weights in every run of ``m`` consecutive
weights along the input dimension (the layout NVIDIA sparse tensor cores accelerate).
:func:`to_semi_structured` converts a masked Linear to
``torch.sparse.to_sparse_semi_structured`` when the GPU supports it and otherwise keeps
the dense masked weight (core PyTorch fallback) — it says which one it used. On an H100
with torch 2.11 we measured no speedup (0.97× at 8192³), so this is opt-in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from prunekit.methods.masks import apply_masks, dense_weight, prunable_weights


def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Boolean mask keeping the ``n`` largest ``|w|`` in each group of ``m`` along the last
    flattened input dimension (rows are output channels)."""
    if not 0 < n <= m:
        raise ValueError(f"need 0 < n <= m, got n={n}, m={m}")
    rows = weight.detach().reshape(weight.shape[0], -1)
    if rows.shape[1] % m:
        raise ValueError(f"input size {rows.shape[1]} is not a multiple of m={m}")
    blocks = rows.abs().reshape(-1, m)
    keep = torch.zeros_like(blocks, dtype=torch.bool)
    keep.scatter_(1, torch.topk(blocks, n, dim=1).indices, True)
    return keep.reshape(weight.shape)


def nm_prune(model: nn.Module, n: int = 2, m: int = 4,
             names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Apply N:M masks to the named weights (default: every Linear/Conv weight whose input
    size is a multiple of ``m``; others are skipped and listed in the returned ``"skipped"``)."""
    chosen = list(names) if names is not None else prunable_weights(model)
    masks, skipped = {}, []
    for name in chosen:
        w = dense_weight(model, name)
        if (w.numel() // w.shape[0]) % m:
            if names is not None:
                raise ValueError(f"{name!r}: input size is not a multiple of m={m}")
            skipped.append(name)
            continue
        masks[name] = nm_mask(w, n, m)
    apply_masks(model, masks)
    return {"masks": masks, "skipped": skipped}


def is_nm_sparse(weight: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """True when every run of ``m`` weights has at most ``n`` nonzeros."""
    rows = weight.detach().reshape(weight.shape[0], -1)
    if rows.shape[1] % m:
        return False
    return bool(((rows.reshape(-1, m) != 0).sum(dim=1) <= n).all())


def semi_structured_supported(device: torch.device | str | None = None) -> bool:
    """True on CUDA devices with compute capability ≥ 8.0 and a torch that has the kernels."""
    if not torch.cuda.is_available() or not hasattr(torch.sparse, "to_sparse_semi_structured"):
        return False
    dev = torch.device(device) if device is not None else torch.device("cuda")
    if dev.type != "cuda":
        return False
    return torch.cuda.get_device_capability(dev)[0] >= 8


def to_semi_structured(linear: nn.Linear) -> str:
    """Swap a 2:4-sparse Linear's weight for a semi-structured sparse tensor, in place.

    Returns the backend used: ``"semi_structured"`` or ``"dense"`` (fallback: nothing
    changes). The weight must already be 2:4 sparse (bake masks first) and, for the
    kernel, fp16/bf16 on a supported GPU.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"expected nn.Linear, got {type(linear).__name__}")
    w = linear.weight
    if not is_nm_sparse(w, 2, 4):
        raise ValueError("weight is not 2:4 sparse; apply nm_prune and bake() first")
    if not semi_structured_supported(w.device) or w.dtype not in (torch.float16, torch.bfloat16):
        return "dense"
    sparse = torch.sparse.to_sparse_semi_structured(w.detach())
    linear.weight = nn.Parameter(sparse, requires_grad=False)
    return "semi_structured"
