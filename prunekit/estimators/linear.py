"""Least-squares estimators with group-sparse penalties.

All minimize ``1/(2n)‖y − Xβ − b‖² + alpha·Ω(β)`` and differ only in ``Ω`` and the
solver; ``groups=None`` means one group per feature (so the defaults give the Lasso).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..sparsity import ADMM, FISTA, BlockCD, Groups
from ..sparsity import GroupLasso as _GroupLassoPenalty
from ..sparsity import OverlappingGroupLasso as _OverlapPenalty
from ..sparsity import SparseGroupLasso as _SparseGroupPenalty
from ..sparsity import TreeGroupLasso as _TreePenalty
from ..sparsity.latent import latent_collapse, latent_design
from ..sparsity.penalties import check_alpha
from ._base import LinearGroupRegressor

__all__ = ["GroupLasso", "SparseGroupLasso", "TreeGroupLasso", "OverlappingGroupLasso"]


class GroupLasso(LinearGroupRegressor):
    """Group Lasso: ``1/(2n)‖y − Xβ − b‖² + alpha·Σ_g w_g ‖β_g‖₂`` over disjoint groups.

    Whole groups of coefficients become exactly zero (group soft-thresholding).
    Solved by working-set block coordinate descent.

    Parameters
    ----------
    groups : None, int, list of index lists, or Groups
        ``None``: one group per feature (the Lasso); ``int k``: consecutive blocks of
        ``k`` features; lists must be disjoint (features in no group are unpenalized).
    alpha : float
        Penalty level ``>= 0``.
    weights : None, "sqrt" or array of shape (n_groups,)
        Group weights ``w_g`` (default 1; ``"sqrt"`` gives ``sqrt(|g|)``).
    fit_intercept : bool
        Fit an unpenalized intercept ``b``.
    tol : float
        Stop when the largest KKT violation (distance of ``−∇f`` to ``∂Ω``) is below.
    max_iter : int
        Outer working-set iterations.
    warm_start : bool
        Start from the previous ``coef_``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    selected_groups_ : ndarray of int — groups with a non-zero coefficient
    n_iter_ : int — block-CD epochs run
    stop_crit_ : float — final KKT violation
    objective_ : float — objective at the solution (on centered data)
    """

    def __init__(self, groups: Any = None, alpha: float = 1.0, weights: Any = None,
                 fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 100,
                 warm_start: bool = False):
        self.groups = groups
        self.alpha = alpha
        self.weights = weights
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start

    def _penalty(self, groups: Groups) -> Any:
        return _GroupLassoPenalty(groups, self.alpha)

    def _solver(self) -> Any:
        return BlockCD(tol=self.tol, max_iter=self.max_iter)


class SparseGroupLasso(GroupLasso):
    """Sparse-group Lasso: ``alpha·(ρ‖β‖₁ + (1 − ρ)Σ_g w_g‖β_g‖₂)`` (ρ = ``l1_ratio``).

    Selects groups and, inside the selected groups, individual features. Parameters
    and attributes as :class:`GroupLasso`, plus ``l1_ratio`` in ``[0, 1]``.
    """

    def __init__(self, groups: Any = None, alpha: float = 1.0, l1_ratio: float = 0.5,
                 weights: Any = None, fit_intercept: bool = True, tol: float = 1e-8,
                 max_iter: int = 100, warm_start: bool = False):
        super().__init__(groups, alpha, weights, fit_intercept, tol, max_iter, warm_start)
        self.l1_ratio = l1_ratio

    def _penalty(self, groups: Groups) -> Any:
        return _SparseGroupPenalty(groups, self.alpha, check_alpha(self.l1_ratio, "l1_ratio"))


class TreeGroupLasso(GroupLasso):
    """Hierarchical selection: ``alpha·Σ_g w_g ‖β_g‖₂`` over nested (tree) groups.

    Any two groups are disjoint or nested; a feature can enter only together with all
    its ancestors (coarse-to-fine). Solved by FISTA with the exact tree prox;
    ``max_iter`` counts FISTA iterations.
    """

    partition = False

    def __init__(self, groups: Any = None, alpha: float = 1.0, weights: Any = None,
                 fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 5000,
                 warm_start: bool = False):
        super().__init__(groups, alpha, weights, fit_intercept, tol, max_iter, warm_start)

    def _penalty(self, groups: Groups) -> Any:
        return _TreePenalty(groups, self.alpha)

    def _solver(self) -> Any:
        return FISTA(tol=self.tol, max_iter=self.max_iter)


class OverlappingGroupLasso(GroupLasso):
    """Group Lasso over arbitrary overlapping groups, in one of two senses.

    ``latent=False`` (default): ``alpha·Σ_g w_g ‖β_g‖₂`` — a feature is zero as soon as
    one group containing it is zero (the support is an intersection of group
    complements). Solved by consensus ADMM (each group owns a copy of its variables);
    ``max_iter`` counts ADMM iterations and ``stop_crit_`` is the final relative residual.

    ``latent=True``: the latent norm of Jacob et al. (2009),
    ``min Σ_g w_g‖v_g‖₂ s.t. Σ_g v_g = β, supp(v_g) ⊂ g`` — the support is a *union* of
    groups. Solved as a disjoint Group Lasso on duplicated columns by block CD;
    ``latent_coef_`` holds the copies ``v`` (concatenated in group order).
    """

    partition = False

    def __init__(self, groups: Any = None, alpha: float = 1.0, weights: Any = None,
                 fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 10_000,
                 warm_start: bool = False, latent: bool = False):
        super().__init__(groups, alpha, weights, fit_intercept, tol, max_iter, warm_start)
        self.latent = latent

    def _penalty(self, groups: Groups) -> Any:
        if self.latent:
            return _LatentPenalty(groups, self.alpha)
        return _OverlapPenalty(groups, self.alpha)

    def _solver(self) -> Any:
        if self.latent:
            return _LatentSolver(BlockCD(tol=self.tol, max_iter=min(self.max_iter, 1000)))
        return ADMM(tol=self.tol, max_iter=self.max_iter)

    def _post_fit(self, penalty: Any) -> None:
        if self.latent:
            self.latent_coef_ = penalty.v


class _LatentPenalty:
    """Marker holding the groups of a latent fit; ``group_support`` reads the copies."""

    def __init__(self, groups: Groups, alpha: float):
        self.groups, self.alpha = groups, check_alpha(alpha)
        self.v = None

    def group_support(self, w: Any) -> Any:
        norms = np.add.reduceat(self.v ** 2, self.groups.ptr[:-1])
        return norms > 0


class _LatentSolver:
    """Solve the duplicated problem with ``inner``; return ``w = Σ_g v_g``."""

    def __init__(self, inner: Any):
        self.inner = inner

    def solve(self, X: Any, y: Any, datafit: Any, penalty: _LatentPenalty, w0: Any = None):
        Xd, dup = latent_design(X, penalty.groups)
        res = self.inner.solve(Xd, y, datafit, _GroupLassoPenalty(dup, penalty.alpha))
        penalty.v = res.coef
        res.coef = latent_collapse(res.coef, penalty.groups)
        return res
