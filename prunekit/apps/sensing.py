"""Structured compressive sensing on the shared group-sparse core.

Convex recovery solves, for a penalty Ω (L1, group lasso, tree group lasso),

    min_x  1/(2m)·‖y − A x‖² + α·Ω(x)

with :class:`prunekit.sparsity.FISTA`, along a decreasing sequence α = r·α_max (warm
started; α_max = Ω*(Aᵀy/m) is the smallest α giving x = 0). For exactly sparse,
noiseless data each stage is *debiased*: least squares on the selected support, which
is the exact signal as soon as the support is right. The continuation stops at the
first stage whose debiased fit explains y (‖y − A x‖ ≤ fit_tol·‖y‖) — a numerical
stand-in for (group / tree) basis pursuit that costs a few lasso solves.

Greedy methods live in :mod:`prunekit.apps.greedy`; :data:`RECOVERY` below names every
method with one signature ``method(A, y, info) -> x`` for the phase-transition harness.

Limitation: the core solvers take dense matrices, so the operators of
:mod:`prunekit.apps.operators` are materialized (fine for n ≤ 4096).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prunekit.apps.greedy import (
    as_operator,
    block_mmp,
    block_omp,
    cosamp,
    least_squares_on,
    omp,
)
from prunekit.apps.models import BlockModel, SparseModel, TreeModel
from prunekit.apps.operators import MeasurementOperator
from prunekit.apps.trees import subtree_groups

Array = np.ndarray
DEFAULT_RATIOS = (0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 1e-4)


@dataclass(frozen=True)
class StructureInfo:
    """What a recovery method may know about the signal (never the signal itself).

    k : number of nonzeros; groups : block partition (block model); parent : wavelet
    tree (tree model); n_blocks : active blocks.
    """

    n: int
    k: int
    groups: list[list[int]] | None = None
    parent: Array | None = None
    n_blocks: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _need(info: StructureInfo, name: str) -> Any:
    value = getattr(info, name)
    if value is None:
        raise ValueError(f"this method needs StructureInfo.{name}")
    return value


def l1_penalty(info: StructureInfo, alpha: float) -> Any:
    """Plain L1."""
    from prunekit.sparsity import L1

    return L1(alpha)


def group_penalty(info: StructureInfo, alpha: float) -> Any:
    """Group lasso over the block partition (weights √|g|)."""
    from prunekit.sparsity import GroupLasso

    return GroupLasso(_need(info, "groups"), alpha, weights="sqrt", n_features=info.n)


def tree_penalty(info: StructureInfo, alpha: float) -> Any:
    """Tree group lasso: one group per node = the node's subtree (Jenatton et al.).

    Weights w_g = |g|^(-1/2): a coefficient at depth d sits in d + 1 nested groups, and
    unit weights over-penalize deep coefficients; on random tree-sparse signals
    (n = 128, k = 16, m = 48) this choice recovered 4/6 trials vs 1/6 with unit weights
    and 0/6 with √|g|.
    """
    from prunekit.sparsity import TreeGroupLasso

    groups = subtree_groups(_need(info, "parent"))
    weights = 1.0 / np.sqrt([len(g) for g in groups])
    return TreeGroupLasso(groups, alpha, weights=weights, n_features=info.n)


def lasso_recover(a: Array | MeasurementOperator, y: Array,
                  penalty: Callable[[float], Any], ratios: Sequence[float] = DEFAULT_RATIOS,
                  refit: bool = True, fit_tol: float = 1e-9, max_iter: int = 2000,
                  rel_tol: float = 1e-4) -> Array:
    """Penalized recovery with continuation in α and (optional) least-squares debiasing.

    Parameters
    ----------
    a : (m, n) matrix or operator (materialized).
    y : (m,) measurements.
    penalty : alpha -> core penalty (e.g. ``lambda a: GroupLasso(groups, a)``).
    ratios : decreasing α / α_max stages.
    refit : debias on the support of each stage; return the first exact fit.
    fit_tol : relative residual at which a debiased fit counts as exact.
    max_iter : FISTA iterations per stage.
    rel_tol : FISTA stops when the KKT residual is ≤ rel_tol·α (only the support of
        each stage matters when refitting, so it need not be tight).
    """
    from prunekit.sparsity import FISTA, Quadratic

    X = _dense(a)
    y = np.asarray(y, dtype=float)
    if not len(ratios) or any(r <= 0 for r in ratios):
        raise ValueError(f"ratios must be a non-empty sequence of positive numbers, got {ratios}")
    amax = penalty(1.0).dual_norm(X.T @ y / X.shape[0])
    w, x = None, np.zeros(X.shape[1])
    for r in ratios:
        solver = FISTA(max_iter=max_iter, tol=rel_tol * r * amax)
        w = solver.solve(X, y, Quadratic(), penalty(r * amax), w0=w).coef
        x = w
        if not refit:
            continue
        if np.count_nonzero(w) > X.shape[0]:
            break                       # more unknowns than equations: no exact refit left
        if np.count_nonzero(w):
            x = least_squares_on(as_operator(X), y, w != 0)
            if np.linalg.norm(y - X @ x) <= fit_tol * np.linalg.norm(y):
                return x
    return x


def reweighted_group_lasso(a: Array | MeasurementOperator, y: Array,
                           groups: list[list[int]], n_rounds: int = 4, eps: float = 0.1
                           ) -> Array:
    """Iteratively reweighted group lasso (Candès, Wakin & Boyd 2008, over groups).

    Round 0 is :func:`lasso_recover` with the group lasso; each further round sets
    w_g = √|g| / (‖x_g‖ / max_h ‖x_h‖ + eps) from the previous estimate — groups that
    look active are penalized less — and solves again, until a debiased fit is exact.
    A closer surrogate of the block-ℓ0 "norm" than one convex solve.
    """
    from prunekit.sparsity import GroupLasso

    X, n = _dense(a), _dense(a).shape[1]
    sizes = np.sqrt([len(g) for g in groups])
    weights = sizes.copy()
    x = np.zeros(n)
    for _ in range(n_rounds + 1):
        x = lasso_recover(X, y, lambda al, w=weights: GroupLasso(groups, al, weights=w,
                                                                   n_features=n))
        if np.linalg.norm(y - X @ x) <= 1e-9 * np.linalg.norm(y):
            return x
        norms = np.array([np.linalg.norm(x[g]) for g in groups])
        weights = sizes / (norms / max(norms.max(), 1e-300) + eps)
    return x


def _dense(a: Array | MeasurementOperator) -> Array:
    return a.dense() if isinstance(a, MeasurementOperator) else np.asarray(a, dtype=float)


def _l1(a: Array, y: Array, info: StructureInfo) -> Array:
    return lasso_recover(a, y, lambda al: l1_penalty(info, al))


def _group_lasso(a: Array, y: Array, info: StructureInfo) -> Array:
    return lasso_recover(a, y, lambda al: group_penalty(info, al))


def _tree_lasso(a: Array, y: Array, info: StructureInfo) -> Array:
    return lasso_recover(a, y, lambda al: tree_penalty(info, al))


def _omp(a: Array, y: Array, info: StructureInfo) -> Array:
    return omp(a, y).x


def _group_lasso_rw(a: Array, y: Array, info: StructureInfo) -> Array:
    return reweighted_group_lasso(a, y, _need(info, "groups"))


def _block_omp(a: Array, y: Array, info: StructureInfo) -> Array:
    return block_omp(a, y, _need(info, "groups")).x


def _block_mmp(a: Array, y: Array, info: StructureInfo) -> Array:
    return block_mmp(a, y, _need(info, "groups")).x


def _cosamp(a: Array, y: Array, info: StructureInfo) -> Array:
    return cosamp(a, y, SparseModel(), info.k).x


def _cosamp_block(a: Array, y: Array, info: StructureInfo) -> Array:
    model = BlockModel.from_lists(_need(info, "groups"), info.n)
    return cosamp(a, y, model, _need(info, "n_blocks")).x


def _cosamp_tree(a: Array, y: Array, info: StructureInfo) -> Array:
    return cosamp(a, y, TreeModel(_need(info, "parent")), info.k).x


RECOVERY: dict[str, Callable[[Array, Array, StructureInfo], Array]] = {
    "l1": _l1,
    "omp": _omp,
    "cosamp": _cosamp,
    "group-lasso": _group_lasso,
    "group-lasso-rw": _group_lasso_rw,
    "block-omp": _block_omp,
    "block-mmp": _block_mmp,
    "cosamp-block": _cosamp_block,
    "tree-lasso": _tree_lasso,
    "cosamp-tree": _cosamp_tree,
}
"""Every recovery method by name: ``RECOVERY[name](A, y, info) -> x``."""


def recover(method: str, a: Array | MeasurementOperator, y: Array, info: StructureInfo
            ) -> Array:
    """Run a registered recovery method by name."""
    try:
        fn = RECOVERY[method]
    except KeyError:
        raise ValueError(f"method must be one of {sorted(RECOVERY)}, got {method!r}") from None
    return fn(a, y, info)
