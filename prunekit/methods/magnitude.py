"""Magnitude masks, global or layer-wise, and interop with :mod:`torch.nn.utils.prune`.

For a target sparsity ``s`` over ``n`` weights, the ``k = round(s·n)`` entries of smallest
``|w|`` are masked (the ``s``-th percentile threshold, made exact with ``topk`` so that
ties cannot overshoot). Entries already masked count first, so masks only shrink. This
is the rule of ``prune.global_unstructured(..., pruning_method=prune.L1Unstructured,
amount=s)`` (global) and of ``prune.l1_unstructured`` (layer-wise) on unmasked weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from prunekit.methods.masks import apply_masks, dense_weight, get_masks, prunable_weights

SCOPES = ("global", "layer")


def _scores(model: nn.Module, names: Sequence[str]) -> list[torch.Tensor]:
    """|w| with already-masked entries scored −1 so they are selected first."""
    masks = get_masks(model)
    out = []
    for name in names:
        score = dense_weight(model, name).detach().abs().clone()
        if name in masks:
            score[~masks[name]] = -1.0
        out.append(score)
    return out


def _keep_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask keeping all but the ``round(sparsity·n)`` smallest scores."""
    flat = scores.reshape(-1)
    k = round(sparsity * flat.numel())
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        keep[torch.topk(flat, k, largest=False).indices] = False
    return keep.view_as(scores)


def magnitude_masks(
    model: nn.Module,
    sparsity: float,
    scope: str = "global",
    names: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Masks that zero the smallest-magnitude fraction ``sparsity`` of the named weights.

    Parameters
    ----------
    sparsity : float
        Target fraction of zeros in ``[0, 1)``, counted over all named weights (global) or
        in each weight separately (layer).
    scope : {"global", "layer"}
        One threshold for all weights, or one per weight tensor.
    names : sequence of str, optional
        Parameter names; default: every Linear/Conv weight (:func:`prunable_weights`).
    """
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    names = list(names) if names is not None else prunable_weights(model)
    scores = _scores(model, names)
    if scope == "layer":
        return {n: _keep_mask(s, sparsity) for n, s in zip(names, scores)}
    flat = _keep_mask(torch.cat([s.reshape(-1) for s in scores]), sparsity)
    parts = torch.split(flat, [s.numel() for s in scores])
    return {n: p.view_as(s) for n, p, s in zip(names, parts, scores)}


def magnitude_prune(
    model: nn.Module, sparsity: float, scope: str = "global", names: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """Compute :func:`magnitude_masks` and apply them in place; returns the masks."""
    masks = magnitude_masks(model, sparsity, scope, names)
    apply_masks(model, masks)
    return get_masks(model)


def import_torch_prune(model: nn.Module) -> dict[str, torch.Tensor]:
    """Move ``torch.nn.utils.prune`` masks (``<name>_mask`` / ``<name>_orig``) onto ours.

    The effective weights are unchanged; the prune hooks are removed and the original
    (unmasked) values are kept under our parametrization. Returns the imported masks.
    """
    from torch.nn.utils import prune

    imported = {}
    for mod_name, module in list(model.named_modules()):
        for hook in [h for h in module._forward_pre_hooks.values()
                     if isinstance(h, prune.BasePruningMethod)]:
            leaf = hook._tensor_name
            mask = getattr(module, leaf + "_mask").detach().clone().bool()
            orig = getattr(module, leaf + "_orig").detach().clone()
            prune.remove(module, leaf)
            with torch.no_grad():
                getattr(module, leaf).copy_(orig)
            full = f"{mod_name}.{leaf}" if mod_name else leaf
            imported[full] = mask
    apply_masks(model, imported)
    return imported


def export_torch_prune(model: nn.Module) -> None:
    """Replace our masks by ``prune.custom_from_mask`` ones (for tools that expect torch's)."""
    from torch.nn.utils import parametrize, prune

    masks = get_masks(model)
    for name, mask in masks.items():
        mod_name, _, leaf = name.rpartition(".")
        module = model.get_submodule(mod_name) if mod_name else model
        parametrize.remove_parametrizations(module, leaf, leave_parametrized=False)
        prune.custom_from_mask(module, leaf, mask)
