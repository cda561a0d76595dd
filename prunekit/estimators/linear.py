"""Least-squares estimators with group-sparse penalties.

All minimize ``1/(2n)‖y − Xβ − b‖² + alpha·Ω(β)`` and differ only in ``Ω`` and the
solver; ``groups=None`` means one group per feature (so the defaults give the Lasso).
"""

from __future__ import annotations

from typing import Any

from ..sparsity import ADMM, FISTA, BlockCD, Groups
from ..sparsity import GroupLasso as _GroupLassoPenalty
from ..sparsity import OverlappingGroupLasso as _OverlapPenalty
from ..sparsity import SparseGroupLasso as _SparseGroupPenalty
from ..sparsity import TreeGroupLasso as _TreePenalty
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
    """``alpha·Σ_g w_g ‖β_g‖₂`` over arbitrary overlapping groups.

    A feature is zero as soon as one group containing it is zero. Solved by consensus
    ADMM (each group owns a copy of its variables); ``max_iter`` counts ADMM iterations
    and ``stop_crit_`` is the final relative residual.
    """

    partition = False

    def __init__(self, groups: Any = None, alpha: float = 1.0, weights: Any = None,
                 fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 10_000,
                 warm_start: bool = False):
        super().__init__(groups, alpha, weights, fit_intercept, tol, max_iter, warm_start)

    def _penalty(self, groups: Groups) -> Any:
        return _OverlapPenalty(groups, self.alpha)

    def _solver(self) -> Any:
        return ADMM(tol=self.tol, max_iter=self.max_iter)
