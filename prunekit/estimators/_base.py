"""Shared machinery of the estimators: parameter checks, groups, fitting, attributes."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from ..sparsity import Groups, Quadratic
from ..sparsity.groups import as_groups
from ..sparsity.penalties import check_alpha


def make_groups(groups: Any, n_features: int, weights: Any, partition: bool) -> Groups:
    """``None`` → one group per feature; ``int k`` → consecutive blocks of ``k``; else lists."""
    if groups is None:
        return Groups.singletons(n_features, weights)
    if isinstance(groups, numbers.Integral) and not isinstance(groups, bool):
        return Groups.contiguous(n_features, int(groups), weights)
    return as_groups(groups, n_features, weights, partition)


def check_params(est: BaseEstimator) -> None:
    """ValueError naming the first bad common parameter (``alpha``, ``tol``, ``max_iter``)."""
    if hasattr(est, "alpha"):
        check_alpha(est.alpha)
    if not isinstance(est.tol, numbers.Real) or not est.tol > 0:
        raise ValueError(f"tol: must be a number > 0, got {est.tol!r}")
    if isinstance(est.max_iter, bool) or not isinstance(est.max_iter, numbers.Integral) \
            or est.max_iter < 1:
        raise ValueError(f"max_iter: must be an integer >= 1, got {est.max_iter!r}")


def warn_if_not_converged(est: BaseEstimator, res: Any) -> None:
    if not res.converged:
        warnings.warn(f"{type(est).__name__} did not converge: stop_crit={res.stop_crit:.3g} "
                      f"> tol={est.tol:g} after {res.n_iter} iterations; raise max_iter",
                      ConvergenceWarning, stacklevel=3)


def set_fit_attributes(est: BaseEstimator, penalty: Any, res: Any) -> None:
    """``selected_groups_``, ``n_iter_``, ``stop_crit_`` from a solver result."""
    est.selected_groups_ = np.flatnonzero(penalty.group_support(est.coef_.T
                                                                if est.coef_.ndim > 1
                                                                else est.coef_))
    est.n_iter_ = int(res.n_iter)
    est.stop_crit_ = float(res.stop_crit)
    est.objective_ = float(res.objective)


class LinearGroupRegressor(RegressorMixin, BaseEstimator):
    """Least squares ``1/(2n)‖y − Xβ − b‖² + Ω(β)``; subclasses choose Ω and the solver.

    The intercept ``b`` is not penalized: it is handled exactly by centering ``X`` and
    ``y`` before solving and setting ``b = ȳ − x̄ᵀβ`` after.
    """

    partition = True

    def _penalty(self, groups: Groups) -> Any:
        raise NotImplementedError

    def _solver(self) -> Any:
        raise NotImplementedError

    def fit(self, X: Any, y: Any) -> LinearGroupRegressor:
        """Fit on ``X`` (n_samples, n_features) and ``y`` (n_samples,); returns ``self``."""
        check_params(self)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        groups = make_groups(self.groups, X.shape[1], self.weights, self.partition)
        penalty = self._penalty(groups)
        Xc, yc, x_mean, y_mean = _center(X, y, self.fit_intercept)
        w0 = getattr(self, "coef_", None) if getattr(self, "warm_start", False) else None
        res = self._solver().solve(Xc, yc, Quadratic(), penalty, w0=w0)
        warn_if_not_converged(self, res)
        self.coef_ = np.asarray(res.coef, dtype=np.float64)
        self.intercept_ = float(y_mean - x_mean @ self.coef_) if self.fit_intercept else 0.0
        set_fit_attributes(self, penalty, res)
        self._post_fit(penalty)
        return self

    def _post_fit(self, penalty: Any) -> None:
        """Hook for subclasses that expose more of the solution."""

    def predict(self, X: Any) -> np.ndarray:
        """``Xβ + b``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_


def _center(X: np.ndarray, y: np.ndarray, fit_intercept: bool):
    if not fit_intercept:
        return X, y, np.zeros(X.shape[1]), 0.0
    x_mean, y_mean = X.mean(0), y.mean()
    return X - x_mean, y - y_mean, x_mean, y_mean
