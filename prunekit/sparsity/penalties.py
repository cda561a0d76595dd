"""Penalties: each knows its value, its prox and its distance to the subdifferential.

``pen.prox(w, step)`` is ``argmin_x ½‖x − w‖² + step·Ω(x)`` where ``Ω`` already includes
``alpha``; ``pen.subdiff_distance(w, grad)`` is, per block, the distance of ``−grad`` to
``∂Ω(w)`` — zero everywhere exactly at a minimizer of ``f + Ω`` when ``grad = ∇f(w)``.
It stops the solvers, ranks groups for working sets, and is reported as ``stop_crit``.
``pen.dual_norm(u)`` is the smallest ``alpha`` at which ``0 ∈ u + alpha·∂Ω₁(0)``, so that
``alpha_max = dual_norm(∇f(0))``. All methods accept numpy arrays and torch tensors.
"""

from __future__ import annotations

import copy
import numbers
from typing import Any

import numpy as np

from . import _backend as B
from .groups import Groups, as_groups
from .prox import (
    prox_frob_nuclear,
    prox_group_l2,
    prox_l1,
    prox_nuclear,
    prox_overlap,
    prox_sparse_group,
    prox_tree,
)
from .tree import tree_parents

__all__ = ["L1", "GroupLasso", "SparseGroupLasso", "TreeGroupLasso", "OverlappingGroupLasso",
           "NuclearNorm", "FrobeniusNuclear", "check_alpha"]


def check_alpha(alpha: Any, name: str = "alpha") -> float:
    """``alpha`` as a float, or ValueError naming ``name`` if not finite and ``>= 0``."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) \
            or not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"{name}: must be a finite number >= 0, got {alpha!r}")
    return float(alpha)


class _Penalty:
    """Shared behaviour; subclasses define ``value`` and ``prox`` (and may override more)."""

    alpha: float
    exact_prox = True  # False where the prox is computed iteratively

    def with_alpha(self, alpha: float) -> _Penalty:
        """Copy with another ``alpha`` (groups and their caches are shared)."""
        new = copy.copy(self)
        new.alpha = check_alpha(alpha)
        return new

    def value(self, w: Any) -> float:
        raise NotImplementedError

    def prox(self, w: Any, step: float) -> Any:
        raise NotImplementedError

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """Prox-gradient residual ``‖w − prox(w − ∇f, 1)‖`` per block (0 iff KKT holds).

        Used where the exact distance has no closed form (nested, overlapping, spectral).
        """
        return self._block_norms(w - self.prox(w - grad, 1.0))

    def dual_norm(self, u: Any) -> float:
        """Smallest ``alpha`` with ``prox_{alpha·Ω₁}(u) = 0``, by bisection.

        Unpenalized rows of ``u`` are ignored (at the point where ``alpha_max`` is
        evaluated they are optimal, so their gradient is zero).
        """
        unit = self.with_alpha(1.0)
        u = self._penalized_part(B.to_numpy(u).astype(float))
        scale = float(np.sqrt(np.sum(u * u)))
        if scale == 0.0:
            return 0.0

        slack = 0.0 if self.exact_prox else 1e-13 * scale  # iterative prox: near zero

        def is_zero(a: float) -> bool:
            z = unit.prox(u, a)
            return float(np.sqrt(np.sum(z * z))) <= slack

        hi = scale
        while not is_zero(hi):
            hi *= 4.0
            if hi > 1e12 * scale:
                return float("inf")  # some entries are not penalized
        lo = 0.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if hi - lo <= 1e-13 * hi:
                break
            lo, hi = (lo, mid) if is_zero(mid) else (mid, hi)
        return hi

    def _penalized_part(self, u: np.ndarray) -> np.ndarray:
        """``u`` with unpenalized rows zeroed (they are assumed optimal for ``alpha_max``)."""
        return u

    def group_support(self, w: Any) -> np.ndarray:
        """Boolean per block: is it non-zero?"""
        return B.to_numpy(self._block_norms(w)) > 0

    def _block_norms(self, v: Any) -> Any:
        return B.sqrt(B.row_sqnorms(v))


class _GroupPenalty(_Penalty):
    """Penalties defined on :class:`Groups` of rows of ``w``."""

    groups: Groups

    @property
    def n_groups(self) -> int:
        return self.groups.n_groups

    def value(self, w: Any) -> float:
        norms = B.sqrt(B.group_sqnorms(w, self.groups))
        return self.alpha * float((B.like(self.groups.weights, norms) * norms).sum())

    def _block_norms(self, v: Any) -> Any:
        return B.sqrt(B.group_sqnorms(v, self.groups))

    def _penalized_part(self, u: np.ndarray) -> np.ndarray:
        u = u.copy()
        u[_free_rows(self.groups, u.shape[0])] = 0
        return u


def _free_rows(groups: Groups, n_rows: int) -> np.ndarray:
    """Rows of a length-``n_rows`` coefficient that belong to no group."""
    free = np.flatnonzero(groups.counts == 0)
    return np.concatenate([free, np.arange(groups.n_features, n_rows)])


def _with_free(per_group: Any, grad: Any, groups: Groups) -> Any:
    """Append ``‖grad_j‖`` of every unpenalized row (its subdifferential is ``{0}``)."""
    free = _free_rows(groups, grad.shape[0])
    if len(free) == 0:
        return per_group
    if B.is_torch(grad):
        import torch

        rows = B.sqrt(B.row_sqnorms(grad[torch.as_tensor(free, device=grad.device)]))
        return torch.cat([per_group, rows])
    rows = B.sqrt(B.row_sqnorms(grad[free]))
    return np.concatenate([per_group, rows])


class L1(_Penalty):
    """``Ω(w) = alpha·‖w‖₁`` (the Lasso)."""

    def __init__(self, alpha: float):
        self.alpha = check_alpha(alpha)

    def value(self, w: Any) -> float:
        return self.alpha * float(abs(w).sum())

    def prox(self, w: Any, step: float) -> Any:
        return prox_l1(w, self.alpha, step)

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """``|g_j + α·sign(w_j)|`` where ``w_j ≠ 0``, ``(|g_j| − α)₊`` where ``w_j = 0``."""
        return B.where(w != 0, abs(grad + self.alpha * B.sign(w)),
                       B.relu(abs(grad) - self.alpha)).reshape(-1)

    def dual_norm(self, u: Any) -> float:
        return float(abs(B.to_numpy(u)).max(initial=0.0))

    def group_support(self, w: Any) -> np.ndarray:
        return B.to_numpy(w).reshape(-1) != 0

    def block_structure(self, n_features: int) -> tuple[Groups, np.ndarray, np.ndarray]:
        """``(groups, l2 strength per group, l1 strength per feature)`` for block CD."""
        return (Groups.singletons(n_features), np.zeros(n_features),
                np.full(n_features, self.alpha))


class GroupLasso(_GroupPenalty):
    """``Ω(w) = alpha·Σ_g w_g ‖w_g‖₂`` over disjoint groups; prox is group soft-thresholding.

    Parameters
    ----------
    groups : list of index lists or Groups
        Disjoint groups of rows of ``w``; rows in no group are not penalized.
    alpha : float
        Penalty level, ``>= 0``.
    weights : None, "sqrt" or array of shape (n_groups,)
        ``w_g``; default 1 (the seed formula), ``"sqrt"`` for ``sqrt(|g|)``.
    n_features : int, optional
        Length of ``w``, for range checking; inferred from the groups if omitted.
    """

    def __init__(self, groups: Any, alpha: float, weights: Any = None,
                 n_features: int | None = None):
        self.groups = as_groups(groups, n_features, weights, partition=True)
        self.alpha = check_alpha(alpha)

    def prox(self, w: Any, step: float) -> Any:
        return prox_group_l2(w, self.alpha, step, self.groups)

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """``‖g_g + α w_g ŵ_g/‖ŵ_g‖‖`` for non-zero groups, ``(‖g_g‖ − α w_g)₊`` for zero ones."""
        gr, weights = self.groups, self.alpha * B.like(self.groups.weights, grad)
        norms = B.sqrt(B.group_sqnorms(w, gr))
        safe = B.where(norms > 0, norms, norms + 1)
        moved = grad + B.scale_groups(w, weights / safe, gr)
        dist = B.where(norms > 0, B.sqrt(B.group_sqnorms(moved, gr)),
                       B.relu(B.sqrt(B.group_sqnorms(grad, gr)) - weights))
        return _with_free(dist, grad, gr)

    def dual_norm(self, u: Any) -> float:
        norms = np.sqrt(B.group_sqnorms(B.to_numpy(u), self.groups))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(norms > 0, norms / self.groups.weights, 0.0)
        return float(ratio.max(initial=0.0))

    def block_structure(self, n_features: int) -> tuple[Groups, np.ndarray, np.ndarray]:
        """Groups plus one zero-weight singleton per free row; l2 and l1 strengths."""
        full = _with_free_singletons(self.groups, n_features)
        l2 = self.alpha * full.weights
        return full, l2, np.zeros(n_features)


class SparseGroupLasso(_GroupPenalty):
    """``Ω(w) = alpha·(ρ‖w‖₁ + (1 − ρ)·Σ_g w_g ‖w_g‖₂)`` over disjoint groups (ρ = l1_ratio).

    The ℓ1 term acts on the rows that belong to a group; free rows are not penalized.
    """

    def __init__(self, groups: Any, alpha: float, l1_ratio: float = 0.5, weights: Any = None,
                 n_features: int | None = None):
        self.groups = as_groups(groups, n_features, weights, partition=True)
        self.alpha = check_alpha(alpha)
        self.l1_ratio = check_alpha(l1_ratio, "l1_ratio")
        if self.l1_ratio > 1:
            raise ValueError(f"l1_ratio: must be in [0, 1], got {l1_ratio!r}")

    def value(self, w: Any) -> float:
        gl = GroupLasso(self.groups, self.alpha * (1 - self.l1_ratio)).value(w)
        rows = w[self._rows(w)]
        return gl + self.alpha * self.l1_ratio * float(abs(rows).sum())

    def prox(self, w: Any, step: float) -> Any:
        return prox_sparse_group(w, self.alpha, step, self.groups, self.l1_ratio)

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """Exact per-group distance (entrywise ℓ1 part plus the group ℓ2 part)."""
        gr = self.groups
        l1, l2 = self.alpha * self.l1_ratio, self.alpha * (1 - self.l1_ratio)
        weights = l2 * B.like(gr.weights, grad)
        norms = B.sqrt(B.group_sqnorms(w, gr))
        safe = B.where(norms > 0, norms, norms + 1)
        moved = grad + B.scale_groups(w, weights / safe, gr)
        entry = B.where(w != 0, abs(moved + l1 * B.sign(w)), B.relu(abs(grad) - l1))
        soft = B.relu(abs(grad) - l1)
        dist = B.where(norms > 0, B.sqrt(B.group_sqnorms(entry, gr)),
                       B.relu(B.sqrt(B.group_sqnorms(soft, gr)) - weights))
        return _with_free(dist, grad, gr)

    def dual_norm(self, u: Any) -> float:
        """Per group, bisect ``‖ST(u_g, aρ)‖₂ = a(1 − ρ)w_g``; the max over groups."""
        u = B.to_numpy(u)
        rho, gr = self.l1_ratio, self.groups
        hi = np.full(gr.n_groups, np.inf)
        umax = np.maximum.reduceat(abs(u[gr.indices]).reshape(len(gr.indices), -1).max(1),
                                   gr.ptr[:-1])
        if rho > 0:
            hi = np.minimum(hi, umax / rho)
        if rho < 1:
            with np.errstate(divide="ignore"):
                hi = np.minimum(hi, np.sqrt(B.group_sqnorms(u, gr)) / ((1 - rho) * gr.weights))
        lo = np.zeros_like(hi)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            soft = np.zeros_like(u, dtype=float)
            soft[gr.indices] = np.maximum(abs(u[gr.indices]) - rho * B.expand_rows(
                mid[gr.group_ids], u[gr.indices]), 0)
            ok = np.sqrt(B.group_sqnorms(soft, gr)) <= mid * (1 - rho) * gr.weights
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        return float(hi.max(initial=0.0))

    def block_structure(self, n_features: int) -> tuple[Groups, np.ndarray, np.ndarray]:
        full = _with_free_singletons(self.groups, n_features)
        l1 = np.zeros(n_features)
        l1[self.groups.indices] = self.alpha * self.l1_ratio
        return full, self.alpha * (1 - self.l1_ratio) * full.weights, l1

    def _rows(self, w: Any) -> Any:
        idx = self.groups.indices
        return self.groups.torch_index(w.device)[0] if B.is_torch(w) else idx


class TreeGroupLasso(_GroupPenalty):
    """``Ω(w) = alpha·Σ_g w_g ‖w_g‖₂`` over nested (tree-structured) groups.

    Any two groups are disjoint or one contains the other (ValueError otherwise). A
    child group can be non-zero only if all its ancestors are: coarse-to-fine selection.
    The prox is exact (leaves-to-root composition, Jenatton et al. 2011).
    """

    def __init__(self, groups: Any, alpha: float, weights: Any = None,
                 n_features: int | None = None):
        self.groups = as_groups(groups, n_features, weights, partition=False)
        tree_parents(self.groups)  # validates the hierarchy
        self.alpha = check_alpha(alpha)

    def prox(self, w: Any, step: float) -> Any:
        return prox_tree(w, self.alpha, step, self.groups)


class OverlappingGroupLasso(_GroupPenalty):
    """``Ω(w) = alpha·Σ_g w_g ‖w_g‖₂`` over arbitrary, possibly overlapping groups.

    The prox has no closed form; it is computed to a duality gap of ``prox_tol`` (block
    CD on the dual). The ADMM solver instead duplicates the variables of every group and
    enforces consensus, using only group soft-thresholds.
    """

    def __init__(self, groups: Any, alpha: float, weights: Any = None,
                 n_features: int | None = None, prox_tol: float = 1e-14):
        self.groups = as_groups(groups, n_features, weights, partition=False)
        self.alpha = check_alpha(alpha)
        self.prox_tol = prox_tol

    exact_prox = False

    def prox(self, w: Any, step: float) -> Any:
        return prox_overlap(w, self.alpha, step, self.groups, tol=self.prox_tol)

    def overlap_structure(self, n_features: int) -> tuple[Groups, np.ndarray]:
        """Groups (plus zero-weight singletons for free rows) and per-group strengths."""
        full = _with_free_singletons(self.groups, n_features)
        return full, self.alpha * full.weights


class _Spectral(_Penalty):
    """Penalties on matrices: ``w`` reshaped to ``(-1, *shape)`` (or used as is)."""

    shape: tuple[int, int] | None

    def _mats(self, w: Any) -> Any:
        if self.shape is not None:
            return w.reshape((-1, *self.shape))
        if w.ndim < 2:
            raise ValueError(f"{type(self).__name__}: needs a matrix (or shape=...), "
                             f"got an array of shape {tuple(w.shape)}")
        return w

    def _singular_values(self, w: Any) -> np.ndarray:
        return np.linalg.svd(B.to_numpy(self._mats(w)), compute_uv=False)

    def _block_norms(self, v: Any) -> Any:
        m = self._mats(v)
        sq = (m * m).reshape(-1, m.shape[-2] * m.shape[-1]).sum(1)
        return B.sqrt(sq)


class NuclearNorm(_Spectral):
    """``Ω(W) = alpha·‖W‖_*`` (sum of singular values); prox is singular value thresholding.

    ``shape=(m, n)`` reshapes a flat ``w`` into a stack of ``m×n`` matrices.
    """

    def __init__(self, alpha: float, shape: tuple[int, int] | None = None):
        self.alpha = check_alpha(alpha)
        self.shape = shape

    def value(self, w: Any) -> float:
        return self.alpha * float(self._singular_values(w).sum())

    def prox(self, w: Any, step: float) -> Any:
        return prox_nuclear(self._mats(w), self.alpha, step).reshape(w.shape)

    def dual_norm(self, u: Any) -> float:
        return float(self._singular_values(u).max(initial=0.0))


class FrobeniusNuclear(_Spectral):
    """``Ω(W) = alpha·Σ_k ((1 − ρ)‖W_k‖_F + ρ‖W_k‖_*)`` over matrices ``W_k`` (ρ = nuclear_ratio).

    The Frobenius term zeros whole matrices (a filter, a head); the nuclear term lowers
    the rank of the ones that stay — the hybrid of seed 000.
    """

    def __init__(self, alpha: float, nuclear_ratio: float = 0.5,
                 shape: tuple[int, int] | None = None):
        self.alpha = check_alpha(alpha)
        self.nuclear_ratio = check_alpha(nuclear_ratio, "nuclear_ratio")
        if self.nuclear_ratio > 1:
            raise ValueError(f"nuclear_ratio: must be in [0, 1], got {nuclear_ratio!r}")
        self.shape = shape

    def value(self, w: Any) -> float:
        s = self._singular_values(w).reshape(-1, min(self._mats(w).shape[-2:]))
        rho = self.nuclear_ratio
        return self.alpha * float(((1 - rho) * np.sqrt((s * s).sum(1)) + rho * s.sum(1)).sum())

    def prox(self, w: Any, step: float) -> Any:
        out = prox_frob_nuclear(self._mats(w), self.alpha, step, self.nuclear_ratio)
        return out.reshape(w.shape)


def _with_free_singletons(groups: Groups, n_features: int) -> Groups:
    """``groups`` plus a weight-0 singleton for each unpenalized feature (cached)."""
    key = ("free", n_features)
    if key not in groups._cache:
        if n_features < groups.n_features:
            raise ValueError(f"groups: built for {groups.n_features} features, "
                             f"data has {n_features}")
        free = _free_rows(groups, n_features)
        indices = np.concatenate([groups.indices, free]).astype(np.int64)
        ptr = np.concatenate([groups.ptr, groups.ptr[-1] + 1 + np.arange(len(free))])
        weights = np.concatenate([groups.weights, np.zeros(len(free))])
        groups._cache[key] = Groups(indices, ptr.astype(np.int64), weights, n_features)
    return groups._cache[key]
