"""Group-sparse logistic regression (binary and multinomial)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..sparsity import BlockCD, Logistic, MultinomialLogistic
from ..sparsity import GroupLasso as _GroupLassoPenalty
from ._base import check_params, make_groups, set_fit_attributes, warn_if_not_converged

__all__ = ["LogisticGroupLasso"]


class LogisticGroupLasso(ClassifierMixin, BaseEstimator):
    """Logistic regression with a Group Lasso penalty on the features.

    Binary: ``1/n Σ log(1 + exp(−y_i(x_iᵀβ + b))) + alpha·Σ_g w_g‖β_g‖₂`` with
    ``y ∈ {−1, +1}``, solved by working-set block CD. More than two classes: softmax
    cross-entropy with ``β`` of shape (n_features, n_classes) and a group holding a
    feature's coefficients for *all* classes (so a feature is dropped for every class
    at once), also by block CD. The intercept is unpenalized.

    Parameters
    ----------
    groups, weights, fit_intercept, tol, warm_start
        As in :class:`prunekit.estimators.GroupLasso`.
    alpha : float
        Penalty level ``>= 0``.
    max_iter : int
        Outer working-set iterations of block coordinate descent.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) (binary) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    selected_groups_, n_iter_, stop_crit_, objective_
        As in :class:`prunekit.estimators.GroupLasso`.
    """

    def __init__(self, groups: Any = None, alpha: float = 0.01, weights: Any = None,
                 fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 100,
                 warm_start: bool = False):
        self.groups = groups
        self.alpha = alpha
        self.weights = weights
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start

    def fit(self, X: Any, y: Any) -> LogisticGroupLasso:
        """Fit on ``X`` (n_samples, n_features) and class labels ``y``; returns ``self``."""
        check_params(self)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y: needs samples of at least 2 classes, got 1 class "
                             f"({self.classes_[0]!r})")
        p = X.shape[1]
        penalty = _GroupLassoPenalty(make_groups(self.groups, p, self.weights, True), self.alpha)
        Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if self.fit_intercept else X
        binary = len(self.classes_) == 2
        target = 2.0 * y_idx - 1.0 if binary else np.eye(len(self.classes_))[y_idx]
        datafit = Logistic() if binary else MultinomialLogistic()
        solver = BlockCD(tol=self.tol, max_iter=self.max_iter)
        res = solver.solve(Xa, target, datafit, penalty, w0=self._warm(binary, Xa.shape[1]))
        warn_if_not_converged(self, res)
        coef = np.asarray(res.coef).reshape(Xa.shape[1], -1)
        self.coef_ = coef[:p].T.copy()
        self.intercept_ = coef[p].copy() if self.fit_intercept else np.zeros(coef.shape[1])
        set_fit_attributes(self, penalty, res)
        return self

    def _warm(self, binary: bool, n_cols: int) -> np.ndarray | None:
        if not (self.warm_start and hasattr(self, "coef_")):
            return None
        w = np.vstack([self.coef_.T, self.intercept_[None, :]])[:n_cols]
        return w.ravel() if binary else w

    def decision_function(self, X: Any) -> np.ndarray:
        """``Xβ + b``: shape (n_samples,) for two classes, else (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            pos = expit(scores)
            return np.column_stack([1 - pos, pos])
        return softmax(scores, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(1)
        return self.classes_[idx]
