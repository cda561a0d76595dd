"""``alpha_max``, regularization paths with warm starts, and budget search.

A budget on the number of non-zero groups (or on their total cost ``Σ c_g·[w_g ≠ 0]``)
is turned into the penalty level ``alpha`` — the Lagrange multiplier, the "price" of a
group in seed 000 — by bisection on ``log(alpha)``, warm-starting every solve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _backend as B
from .solvers import ADMM, FISTA, BlockCD, SolverResult

__all__ = ["alpha_max", "default_solver", "regularization_path", "budget_search", "PathResult",
           "BudgetResult"]


def alpha_max(X: Any, y: Any, datafit: Any, penalty: Any, w0: Any = None) -> float:
    """Smallest ``alpha`` for which ``w = 0`` is optimal: ``Ω₁*(−∇f(0))``.

    ``w0`` (default zero) may hold optimal values of unpenalized coefficients, e.g. an
    intercept column; the gradient is taken there and its unpenalized rows are ignored.
    """
    shape = datafit.coef_shape(X, y) if hasattr(datafit, "coef_shape") else (X.shape[1],)
    w = B.like(np.zeros(shape), X) if w0 is None else w0
    grad = datafit.gradient(X, y, X @ w)
    return float(penalty.with_alpha(1.0).dual_norm(-grad))


def default_solver(X: Any, y: Any, datafit: Any, penalty: Any, tol: float = 1e-8,
                   max_iter: int | None = None) -> Any:
    """The fastest solver that supports this datafit/penalty/array combination.

    Block CD for group-separable penalties on numpy (1-D target, or multinomial), ADMM for
    overlapping groups with least squares, FISTA otherwise (and for torch tensors).
    """
    kind = getattr(datafit, "bcd_kind", None)
    fits = (kind in ("quadratic", "logistic") and getattr(y, "ndim", 1) == 1) or \
        kind == "multinomial"
    if fits and not B.is_torch(X) and hasattr(penalty, "block_structure"):
        return BlockCD(tol=tol, **({"max_iter": max_iter} if max_iter else {}))
    if not B.is_torch(X) and hasattr(penalty, "overlap_structure") and \
            hasattr(datafit, "admm_solver"):
        return ADMM(tol=tol, **({"max_iter": max_iter} if max_iter else {}))
    return FISTA(tol=tol, **({"max_iter": max_iter} if max_iter else {}))


@dataclass
class PathResult:
    """Solutions along a decreasing sequence of ``alphas``."""

    alphas: np.ndarray
    coefs: list[Any]
    n_nonzero_groups: list[int]
    results: list[SolverResult] = field(repr=False)


def regularization_path(X: Any, y: Any, datafit: Any, penalty: Any, alphas: Any = None,
                        n_alphas: int = 20, eps: float = 1e-3, solver: Any = None,
                        w0: Any = None, progress: bool = False) -> PathResult:
    """Solve for each alpha (largest first), warm-starting from the previous solution.

    Default alphas: ``n_alphas`` log-spaced from ``alpha_max`` down to
    ``eps·alpha_max``. ``penalty`` fixes everything but ``alpha``.
    """
    if alphas is None:
        top = alpha_max(X, y, datafit, penalty, w0)
        alphas = np.geomspace(top, top * eps, n_alphas) if top > 0 else np.zeros(1)
    alphas = np.sort(np.asarray(alphas, dtype=float))[::-1]
    if np.any(alphas < 0) or not np.all(np.isfinite(alphas)):
        raise ValueError("alphas: must be finite and >= 0")
    solver = solver or default_solver(X, y, datafit, penalty)
    results, nnz, w = [], [], w0
    for a in _progress(alphas, progress, "regularization path"):
        pen = penalty.with_alpha(float(a))
        res = solver.solve(X, y, datafit, pen, w0=w)
        nnz.append(int(pen.group_support(res.coef).sum()))
        results.append(res)
        w = res.coef
    return PathResult(alphas, [r.coef for r in results], nnz, results)


@dataclass
class BudgetResult:
    """Outcome of :func:`budget_search`: the ``alpha`` used and its solution."""

    alpha: float
    coef: Any
    cost: float
    budget: float
    result: SolverResult = field(repr=False)
    n_solves: int = 0


def budget_search(X: Any, y: Any, datafit: Any, penalty: Any, max_groups: int | None = None,
                  costs: Any = None, budget: float | None = None, solver: Any = None,
                  rtol: float = 0.005, w0: Any = None) -> BudgetResult:
    """Smallest ``alpha`` whose solution meets the budget.

    Either ``max_groups`` (at most k non-zero groups) or ``costs`` and ``budget``
    (``Σ_g c_g·[w_g ≠ 0] <= B``). Bisection on ``log(alpha)`` between a violating and a
    meeting value until their ratio is ``<= 1 + rtol``; the answer is then checked
    against ``0.99·alpha`` and the search continues below if that also meets the budget,
    so the returned alpha meets the budget and ``0.99·alpha`` does not (unless alpha
    already is the smallest value tried, ``1e-6·alpha_max``).
    """
    cost_of, budget = _budget(penalty, max_groups, costs, budget)
    solver = solver or default_solver(X, y, datafit, penalty, tol=1e-10)
    top = alpha_max(X, y, datafit, penalty, w0)
    solves = _Solves(X, y, datafit, penalty, solver, cost_of, w0)
    hi, hi_res = top, solves(top, w0)
    lo = _find_violating(solves, top, budget)
    while lo is not None:
        while hi / lo > 1 + rtol:
            mid = math.sqrt(lo * hi)
            res = solves(mid, hi_res.coef)
            if cost_of(res.coef) <= budget:
                hi, hi_res = mid, res
            else:
                lo = mid
        check = solves(0.99 * hi, hi_res.coef)
        if cost_of(check.coef) > budget:
            break
        hi, hi_res, lo = 0.99 * hi, check, _find_violating(solves, 0.99 * hi, budget)
    return BudgetResult(hi, hi_res.coef, cost_of(hi_res.coef), budget, hi_res, solves.count)


class _Solves:
    """Solve at a given alpha (warm start), counting solves."""

    def __init__(self, X, y, datafit, penalty, solver, cost_of, w0):
        self.args = (X, y, datafit)
        self.penalty, self.solver, self.cost_of = penalty, solver, cost_of
        self.count = 0
        self.last = w0

    def __call__(self, alpha: float, warm: Any) -> SolverResult:
        self.count += 1
        res = self.solver.solve(*self.args, self.penalty.with_alpha(alpha), w0=warm)
        self.last = res.coef
        return res


def _find_violating(solves: _Solves, start: float, budget: float) -> float | None:
    """Halve alpha from ``start`` until the budget is violated (None if it never is)."""
    a = start
    while a > 1e-6 * start:
        a /= 2
        if solves.cost_of(solves(a, solves.last).coef) > budget:
            return a
    return None


def _budget(penalty: Any, max_groups: Any, costs: Any, budget: Any):
    """The cost function ``w ↦ Σ c_g [w_g ≠ 0]`` and the budget, validated."""
    if (max_groups is None) == (budget is None):
        raise ValueError("budget: give either max_groups or costs and budget")
    if max_groups is not None:
        if isinstance(max_groups, bool) or not isinstance(max_groups, int | np.integer) \
                or max_groups < 0:
            raise ValueError(f"max_groups: must be an integer >= 0, got {max_groups!r}")
        return (lambda w: float(penalty.group_support(w).sum())), float(max_groups)
    c = np.asarray(costs, dtype=float) if costs is not None else None
    if c is None or c.ndim != 1 or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("costs: need finite non-negative per-group costs")
    if not np.isfinite(budget) or budget < 0:
        raise ValueError(f"budget: must be finite and >= 0, got {budget!r}")

    def cost_of(w: Any) -> float:
        support = penalty.group_support(w)
        if support.shape != c.shape:
            raise ValueError(f"costs: expected {support.shape[0]} values (one per group), "
                             f"got {c.shape[0]}")
        return float(c @ support)

    return cost_of, float(budget)


def _progress(items: Any, show: bool, label: str):
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=label)
