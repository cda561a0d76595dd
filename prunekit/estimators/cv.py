"""Cross-validated choice of ``alpha`` for the Group Lasso (warm-started paths)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import check_cv
from sklearn.utils.validation import validate_data

from ..sparsity import BlockCD, Quadratic, alpha_max, regularization_path
from ..sparsity import GroupLasso as _GroupLassoPenalty
from ._base import LinearGroupRegressor, _center, check_params, make_groups
from .linear import GroupLasso

__all__ = ["GroupLassoCV"]


class GroupLassoCV(LinearGroupRegressor):
    """Group Lasso with ``alpha`` chosen by K-fold cross-validation (mean squared error).

    Each fold solves the whole path (``n_alphas`` values from ``alpha_max`` down to
    ``eps·alpha_max``, or ``alphas``) with warm starts; the final model is refit on all
    data at the best ``alpha_``.

    Parameters
    ----------
    groups, weights, fit_intercept, tol, max_iter
        As in :class:`GroupLasso`.
    alphas : array-like, optional
        Candidate penalty levels; default: a log grid from ``alpha_max``.
    n_alphas : int
        Grid size when ``alphas`` is not given.
    eps : float
        Smallest grid value relative to ``alpha_max``.
    cv : int or CV splitter
        Folds (as in scikit-learn).

    Attributes
    ----------
    alpha_ : float — the chosen penalty level
    alphas_ : ndarray — the grid, decreasing
    mse_path_ : ndarray of shape (n_alphas, n_folds) — validation MSE
    coef_, intercept_, selected_groups_, n_iter_, stop_crit_
        Of the model refit at ``alpha_``.
    """

    def __init__(self, groups: Any = None, alphas: Any = None, n_alphas: int = 20,
                 eps: float = 1e-3, cv: Any = 5, weights: Any = None,
                 fit_intercept: bool = True, tol: float = 1e-6, max_iter: int = 100):
        self.groups = groups
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.weights = weights
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> GroupLassoCV:
        """Choose ``alpha_`` by cross-validation, then refit; returns ``self``."""
        check_params(self)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        groups = make_groups(self.groups, X.shape[1], self.weights, True)
        self.alphas_ = self._grid(X, y, groups)
        folds = list(check_cv(self.cv).split(X, y))
        self.mse_path_ = np.column_stack([self._fold_mse(X, y, groups, tr, te)
                                          for tr, te in folds])
        self.alpha_ = float(self.alphas_[np.argmin(self.mse_path_.mean(1))])
        final = GroupLasso(groups, self.alpha_, None, self.fit_intercept, self.tol,
                           self.max_iter).fit(X, y)
        for name in ("coef_", "intercept_", "selected_groups_", "n_iter_", "stop_crit_",
                     "objective_"):
            setattr(self, name, getattr(final, name))
        return self

    def _grid(self, X: np.ndarray, y: np.ndarray, groups: Any) -> np.ndarray:
        if self.alphas is not None:
            alphas = np.sort(np.asarray(self.alphas, dtype=float).ravel())[::-1]
            if alphas.size == 0 or np.any(~np.isfinite(alphas)) or np.any(alphas < 0):
                raise ValueError("alphas: need finite values >= 0")
            return alphas
        if not (isinstance(self.n_alphas, int) and self.n_alphas >= 1):
            raise ValueError(f"n_alphas: must be an integer >= 1, got {self.n_alphas!r}")
        if not 0 < self.eps < 1:
            raise ValueError(f"eps: must be in (0, 1), got {self.eps!r}")
        Xc, yc, _, _ = _center(X, y, self.fit_intercept)
        top = alpha_max(Xc, yc, Quadratic(), _GroupLassoPenalty(groups, 1.0))
        return np.geomspace(top, top * self.eps, self.n_alphas) if top > 0 else np.zeros(1)

    def _fold_mse(self, X, y, groups, train, test) -> np.ndarray:
        Xc, yc, x_mean, y_mean = _center(X[train], y[train], self.fit_intercept)
        path = regularization_path(Xc, yc, Quadratic(), _GroupLassoPenalty(groups, 1.0),
                                   alphas=self.alphas_,
                                   solver=BlockCD(tol=self.tol, max_iter=self.max_iter))
        coefs = np.array(path.coefs)
        pred = X[test] @ coefs.T + (y_mean - coefs @ x_mean)
        return ((pred - y[test][:, None]) ** 2).mean(0)
