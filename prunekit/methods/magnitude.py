"""Magnitude masks, global, layer-wise or LAMP, and interop with :mod:`torch.nn.utils.prune`.

For a target sparsity ``s`` over ``n`` weights, the ``k = round(s·n)`` entries of smallest
score are masked (the ``s``-th percentile threshold, made exact with ``topk`` so that
ties cannot overshoot). Entries already masked count first, so masks only shrink. With
the score ``|w|`` this is the rule of ``prune.global_unstructured(...,
pruning_method=prune.L1Unstructured, amount=s)`` (global) and of ``prune.l1_unstructured``
(layer-wise) on unmasked weights.

``scope="lamp"`` is layer-adaptive magnitude pruning (Lee et al., ICLR 2021): inside each
tensor the surviving weights are sorted by ``|w|`` ascending, ``u = 1..n``, and scored

    score(u) = w_u² / Σ_{v ≥ u} w_v²,

the weight's share of the squared norm of itself and every larger weight of its tensor;
then one global threshold is taken over all scores. The score is scale-invariant per
tensor (so no layer is emptied because its weights are small, e.g. a wide input layer
next to a narrow output layer), the largest weight of each tensor scores exactly 1 and
is the last one cut, and it is the greedy choice that keeps the model-level ℓ₂
distortion of each layer's output smallest (Lee et al., Thm. 3.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from prunekit.methods.masks import apply_masks, dense_weight, get_masks, prunable_weights

SCOPES = ("global", "layer", "lamp")


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


def lamp_scores(weight: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """LAMP scores ``w_u² / Σ_{v ≥ u} w_v²`` of one tensor (``u`` sorted by ``|w|``).

    Entries with ``keep`` False (already masked) score −1 and are left out of every
    denominator. Ties are ordered by position (a stable sort), so of two equal weights
    the earlier one scores lower; all-zero tails score 0.
    """
    sq = weight.detach().reshape(-1).double().pow(2)
    alive = torch.ones_like(sq, dtype=torch.bool) if keep is None else keep.reshape(-1)
    sq = torch.where(alive, sq, torch.zeros_like(sq))
    order = torch.sort(sq, stable=True).indices
    ordered = sq[order]
    tail = ordered.flip(0).cumsum(0).flip(0)  # Σ_{v ≥ u} w_v²
    scores = torch.empty_like(sq)
    positive = tail > 0  # a subnormal tail divides exactly; a clamp would not (1e-309)
    scores[order] = torch.where(positive, ordered / torch.where(positive, tail, 1.0),
                                torch.zeros_like(ordered))
    scores[~alive] = -1.0
    return scores.view_as(weight).to(torch.float32)


def _lamp(model: nn.Module, names: Sequence[str]) -> list[torch.Tensor]:
    masks = get_masks(model)
    return [lamp_scores(dense_weight(model, n), masks.get(n)) for n in names]


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
    scope : {"global", "layer", "lamp"}
        One ``|w|`` threshold for all weights, one per weight tensor, or one threshold over
        the LAMP scores of all weights (:func:`lamp_scores`; the per-layer sparsities
        then adapt to each layer's weight distribution).
    names : sequence of str, optional
        Parameter names; default: every Linear/Conv weight (:func:`prunable_weights`).
    """
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    names = list(names) if names is not None else prunable_weights(model)
    scores = _lamp(model, names) if scope == "lamp" else _scores(model, names)
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
