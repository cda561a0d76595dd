"""cvxpy reference solutions, gathered in one place for all sparsity/estimator tests.

Every function solves the stated convex problem with Clarabel at tight tolerances and
returns plain numpy results.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np

_OPTS = {"solver": "CLARABEL", "tol_gap_abs": 1e-13, "tol_gap_rel": 1e-13, "tol_feas": 1e-13,
         "max_iter": 500}


def _solve(prob: cp.Problem) -> float:
    """Solve quietly: at these tolerances Clarabel often flags "inaccurate" while being
    accurate to ~1e-9, far inside the 1e-6 the tests compare at."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        prob.solve(**_OPTS)
    return float(prob.value)


def group_norms(x, groups, weights=None):
    """cvxpy expression ``Σ_g w_g ‖x_g‖₂`` (rows of ``x`` for a 2-D variable)."""
    weights = np.ones(len(groups)) if weights is None else weights
    terms = [w * cp.norm(x[list(g)] if len(x.shape) == 1 else x[list(g), :], "fro")
             for g, w in zip(groups, weights)]
    return sum(terms)


def prox_reference(v, strength, groups=(), weights=None, l1=0.0, step=1.0):
    """``argmin ½‖x − v‖² + step·(strength·Σ_g w_g ‖x_g‖ + l1·Σ_{j in groups}|x_j|)``."""
    x = cp.Variable(v.shape)
    pen = strength * group_norms(x, groups, weights) if len(groups) else 0
    if l1:
        rows = sorted({j for g in groups for j in g})
        pen = pen + l1 * cp.sum(cp.abs(x[rows]))
    _solve(cp.Problem(cp.Minimize(0.5 * cp.sum_squares(x - v) + step * pen)))
    return np.asarray(x.value)


def spectral_prox_reference(V, strength, nuclear_ratio=1.0, step=1.0):
    """``argmin ½‖X − V‖_F² + step·strength·((1 − ρ)‖X‖_F + ρ‖X‖_*)`` for one matrix."""
    x = cp.Variable(V.shape)
    pen = (1 - nuclear_ratio) * cp.norm(x, "fro") + nuclear_ratio * cp.normNuc(x)
    _solve(cp.Problem(cp.Minimize(0.5 * cp.sum_squares(x - V) + step * strength * pen)))
    return np.asarray(x.value)


def _loss(kind, X, y, coef, b):
    n = X.shape[0]
    if kind == "quadratic":
        return cp.sum_squares(y - X @ coef - b) / (2 * n)
    if kind == "logistic":  # y in {-1, +1}
        return cp.sum(cp.logistic(-cp.multiply(y, X @ coef + b))) / n
    if kind == "multinomial":  # y one-hot (n, K)
        z = X @ coef + np.ones((n, 1)) @ cp.reshape(b, (1, y.shape[1]), order="C")
        return (cp.sum(cp.log_sum_exp(z, axis=1)) - cp.sum(cp.multiply(y, z))) / n
    raise ValueError(kind)


def solve_reference(X, y, kind, alpha, groups, weights=None, l1_ratio=0.0,
                    fit_intercept=False, latent=False):
    """Optimal ``(coef, intercept, objective)`` of ``loss + alpha·penalty``.

    The penalty is ``(1 − ρ)Σ_g w_g‖β_g‖ + ρ‖β‖₁`` (ρ = l1_ratio; groups may overlap or
    nest), or with ``latent=True`` the latent overlapping norm
    ``min Σ_g w_g‖v_g‖ s.t. Σ_g v_g = β, supp(v_g) ⊂ g`` (Jacob et al. 2009).
    """
    p = X.shape[1]
    shape = (p,) if y.ndim == 1 else (p, y.shape[1])
    coef = cp.Variable(shape)
    b = cp.Variable(shape[1:]) if fit_intercept else np.zeros(shape[1:])
    cons = []
    if latent:
        parts = [cp.Variable(len(g)) for g in groups]
        weights = np.ones(len(groups)) if weights is None else weights
        pen = sum(w * cp.norm(v) for v, w in zip(parts, weights))
        for j in range(p):
            terms = [v[list(g).index(j)] for v, g in zip(parts, groups) if j in g]
            cons.append(coef[j] == (sum(terms) if terms else 0))
    else:
        pen = (1 - l1_ratio) * group_norms(coef, groups, weights)
        if l1_ratio:
            pen = pen + l1_ratio * cp.sum(cp.abs(coef))
    obj = _loss(kind, X, y, coef, b) + alpha * pen
    prob = cp.Problem(cp.Minimize(obj), cons)
    value = _solve(prob)
    intercept = np.asarray(b.value) if fit_intercept else np.zeros(shape[1:])
    return np.asarray(coef.value), intercept, value
