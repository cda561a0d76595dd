"""Proximal operators as pure functions on numpy arrays or torch tensors.

Each ``prox_*(x, strength, step, ...)`` returns ``argmin_z ½‖z − x‖² + step·strength·Ω(z)``
in the type (and on the device) of ``x``, never modifying ``x``. Grouping is along axis 0:
a group of rows of a 2-D ``x`` (e.g. one feature across all classes, or one output
channel of a layer) is one block. All are vectorized over groups: one call per layer.
"""

from __future__ import annotations

from typing import Any

from . import _backend as B
from .groups import Groups
from .tree import tree_levels

__all__ = ["group_scale", "prox_l1", "prox_group_l2", "prox_sparse_group", "prox_tree",
           "prox_overlap", "prox_nuclear", "prox_frob_nuclear"]


def group_scale(norms: Any, tau: Any) -> Any:
    """Group soft-threshold factor ``(1 − τ/‖v_g‖)₊``, and 0 where ``‖v_g‖ = 0``.

    Multiplying group ``g`` by this factor is its prox: ``v_g* = (1 − τ/‖v_g‖)₊ · v_g``.
    """
    positive = norms > 0
    safe = B.where(positive, norms, B.like(1.0, norms) if B.is_torch(norms) else 1.0)
    return B.where(positive, B.relu(1 - tau / safe), 0 * norms)


def prox_l1(x: Any, strength: Any, step: float) -> Any:
    """Soft-thresholding: ``sign(x)·(|x| − step·strength)₊`` (``strength`` may be per entry)."""
    return B.sign(x) * B.relu(abs(x) - step * strength)


def prox_group_l2(x: Any, strength: Any, step: float, groups: Groups | None = None) -> Any:
    """Group soft-thresholding, prox of ``strength·Σ_g w_g ‖x_g‖₂``.

    Parameters
    ----------
    x : array or tensor
        With ``groups=None`` every slice ``x[g]`` along axis 0 is a group (a stacked
        ``x.view(G, -1)``); otherwise rows are gathered by the disjoint ``groups``, and
        rows outside every group are returned unchanged.
    strength : float or array of shape (n_groups,)
        Penalty level (per group allowed); multiplied by ``groups.weights``.
    step : float
        Step size; the threshold of group ``g`` is ``τ_g = step·strength·w_g``.
    groups : Groups, optional
        Disjoint groups of rows.
    """
    if groups is None:
        norms = B.sqrt(B.row_sqnorms(x))
        return x * B.expand_rows(group_scale(norms, step * _per_group(strength, x)), x)
    _require_partition(groups, "prox_group_l2")
    norms = B.sqrt(B.group_sqnorms(x, groups))
    tau = step * _per_group(strength, norms) * B.like(groups.weights, norms)
    return B.scale_groups(x, group_scale(norms, tau), groups)


def prox_sparse_group(x: Any, strength: float, step: float, groups: Groups,
                      l1_ratio: float) -> Any:
    """Prox of the sparse-group lasso ``strength·(ρ‖x‖₁ + (1 − ρ)Σ_g w_g‖x_g‖₂)``.

    Exact as soft-thresholding followed by group soft-thresholding (Friedman, Hastie &
    Tibshirani 2010). The ℓ1 part acts only on rows that belong to a group.
    """
    _require_partition(groups, "prox_sparse_group")
    z = B.copy(x)
    rows = groups.indices
    if B.is_torch(x):
        rows = groups.torch_index(x.device)[0]
    z[rows] = prox_l1(x[rows], strength * l1_ratio, step)
    return prox_group_l2(z, strength * (1 - l1_ratio), step, groups)


def prox_tree(x: Any, strength: float, step: float, groups: Groups) -> Any:
    """Exact prox of ``strength·Σ_g w_g ‖x_g‖₂`` for tree-structured (nested) groups.

    Composes group soft-thresholds from the leaves to the root (Jenatton et al. 2011):
    a child can be non-zero only if all its ancestors are.
    """
    z = x
    for level in tree_levels(groups):
        z = prox_group_l2(z, strength, step, level)
    return B.copy(z) if z is x else z


def prox_overlap(x: Any, strength: float, step: float, groups: Groups, tol: float = 1e-14,
                 max_sweeps: int = 10_000) -> Any:
    """Prox of ``strength·Σ_g w_g ‖x_g‖₂`` for arbitrary (overlapping) groups.

    No closed form exists; block coordinate descent on the dual (one exact ball
    projection per group) runs until the duality gap is below ``tol·max(1, ‖x‖²)``.
    For nested groups a single leaves-to-root sweep is already exact.
    """
    import numpy as np

    from ._kernels import dual_bcd_overlap

    v = np.ascontiguousarray(B.to_numpy(x), dtype=np.float64)
    v2 = v.reshape(v.shape[0], -1) if v.ndim > 1 else v[:, None]
    tau = step * strength * groups.weights
    if "leaf_first" not in groups._cache:  # small (leaf) groups first
        order = np.argsort(groups.sizes, kind="stable")
        groups._cache["leaf_first"] = (order, groups.subset(order))
    order, sub = groups._cache["leaf_first"]
    z, _, _ = dual_bcd_overlap(v2, sub.indices, sub.ptr, tau[order], max_sweeps,
                               tol * max(1.0, float(np.sum(v2 * v2))))
    return B.like(z.reshape(v.shape), x)


def prox_nuclear(x: Any, strength: float, step: float) -> Any:
    """Singular value thresholding, prox of ``strength·‖X‖_*``; batched over leading axes."""
    u, s, vt = B.svd(x)
    return (u * B.relu(s - step * strength)[..., None, :]) @ vt


def prox_frob_nuclear(x: Any, strength: float, step: float, nuclear_ratio: float = 0.5) -> Any:
    """Prox of ``strength·((1 − ρ)‖X‖_F + ρ‖X‖_*)`` per matrix (batched over leading axes).

    Both terms are spectral (``‖X‖_F = ‖σ‖₂``, ``‖X‖_* = ‖σ‖₁``), so the prox thresholds
    the singular values with the sparse-group rule: soft-threshold by ``τρ`` (lowers the
    rank), then scale by ``(1 − τ(1 − ρ)/‖σ‖₂)₊`` (zeros the whole matrix).
    """
    tau = step * strength
    u, s, vt = B.svd(x)
    s = B.relu(s - tau * nuclear_ratio)
    norms = B.sqrt((s * s).sum(-1))
    s = s * group_scale(norms, tau * (1 - nuclear_ratio))[..., None]
    return (u * s[..., None, :]) @ vt


def _per_group(strength: Any, like: Any) -> Any:
    if isinstance(strength, int | float):
        return strength
    return B.like(strength, like)


def _require_partition(groups: Groups, where: str) -> None:
    if not groups.is_partition:
        raise ValueError(f"{where}: groups overlap; use prox_tree for nested groups or "
                         "OverlappingGroupLasso.prox for general overlaps")
