"""Structured vs unstructured identification of networked state-space models.

:func:`identify_unstructured` is N4SID with least squares (any basis).
:func:`identify_structured` adds the basis fixed by the known C pattern and a group
lasso (on :mod:`prunekit.sparsity`) for the unknown block patterns of A and B.
"""

from __future__ import annotations

import numpy as np

from prunekit.apps.state_space import (
    StateSpace,
    align_to_c_pattern,
    least_squares_system,
    n4sid,
)

Array = np.ndarray


def identify_unstructured(u: Array, y: Array, order: int, horizon: int = 3) -> StateSpace:
    """N4SID + least squares: the baseline that ignores locality."""
    return n4sid(u, y, order, horizon)[0]


def identify_structured(u: Array, y: Array, sensor_node: Array, state_dim: int,
                        horizon: int = 3, n_alphas: int = 12, min_ratio: float = 1e-3,
                        sparse: bool = True) -> StateSpace:
    """N4SID states → basis from the known C pattern → group-sparse (A, B), masked C.

    Parameters
    ----------
    u, y : (T, m) inputs and (T, p) outputs.
    sensor_node : (p,) node seen by each sensor (the known pattern of C).
    state_dim : states per node d; the order is n_nodes·d with n_nodes = max node + 1.
    n_alphas, min_ratio : the λ path, from λ_max down to min_ratio·λ_max.
    sparse : False replaces the group lasso by least squares (the ablation that uses
        the C pattern for the basis but no sparsity on A and B).
    """
    sensor_node = np.asarray(sensor_node, dtype=int)
    order = (int(sensor_node.max()) + 1) * state_dim
    raw, states = n4sid(u, y, order, horizon)
    _, states = align_to_c_pattern(raw, states, sensor_node, state_dim)
    lo = horizon
    u_al, y_al = np.asarray(u)[lo: lo + len(states)], np.asarray(y)[lo: lo + len(states)]
    node = np.repeat(np.arange(order // state_dim), state_dim)
    if sparse:
        a, b = fit_group_sparse(states, u_al, node, n_alphas, min_ratio)
    else:
        ls = least_squares_system(states, u_al, y_al)
        a, b = ls.A, ls.B
    c = fit_masked_c(states, y_al, node, sensor_node)
    return StateSpace(a, b, c, node)


def fit_masked_c(states: Array, y: Array, node: Array, sensor_node: Array) -> Array:
    """C by least squares with the known pattern: sensor i uses only its node's states."""
    c = np.zeros((y.shape[1], states.shape[1]))
    for i, k in enumerate(sensor_node):
        cols = np.flatnonzero(node == k)
        c[i, cols] = np.linalg.lstsq(states[:, cols], y[:, i], rcond=None)[0]
    return c


def fit_group_sparse(states: Array, u: Array, node: Array, n_alphas: int = 20,
                     min_ratio: float = 1e-3) -> tuple[Array, Array]:
    """(A, B) node by node with a multi-output group lasso and BIC.

    For node k, the targets are its d states at t+1 and the features are all states and
    inputs at t (standardized). Groups: each other node's d states (a block A[k, l]) and
    each input (a column B[k, j]), weighted √|g|; node k's own states are unpenalized.
    Along λ = λ_max·r (warm started FISTA), each support is refit by least squares and
    scored by BIC = N·d·log(RSS/(N·d)) + log(N·d)·(number of coefficients).
    """
    n, m = states.shape[1], u.shape[1]
    z = np.hstack([states[:-1], u[:-1]])
    scale = z.std(0)
    scale[scale == 0] = 1.0
    zs = z / scale
    a, b = np.zeros((n, n)), np.zeros((n, m))
    for k in np.unique(node):
        own = np.flatnonzero(node == k)
        coef = _fit_node(zs, states[1:, own], own, node, m, n_alphas, min_ratio) / scale[:, None]
        a[own] = coef[:n].T
        b[own] = coef[n:].T
    return a, b


def _node_groups(own: Array, node: Array, m: int) -> list[list[int]]:
    n = len(node)
    others = [np.flatnonzero(node == l).tolist() for l in np.unique(node) if l != node[own[0]]]
    return others + [[n + j] for j in range(m)]


def _fit_node(z: Array, target: Array, own: Array, node: Array, m: int, n_alphas: int,
              min_ratio: float) -> Array:
    from prunekit.sparsity import FISTA, GroupLasso, Quadratic

    groups = _node_groups(own, node, m)
    ls = np.linalg.lstsq(z, target, rcond=None)[0]
    weights = np.array([np.sqrt(len(g)) / max(np.linalg.norm(ls[g]), 1e-12) for g in groups])
    pen = GroupLasso(groups, 1.0, weights=weights, n_features=z.shape[1])
    free = np.setdiff1d(np.arange(z.shape[1]), np.concatenate(groups))
    # λ_max with the free (own-node) features fitted first: gradient at their LS fit
    resid = target - z[:, free] @ np.linalg.lstsq(z[:, free], target, rcond=None)[0]
    grad = z.T @ resid / len(z)
    grad[free] = 0.0                  # ~1e-17 after the fit; the core would read it as ∞
    amax = pen.dual_norm(grad)
    best, best_bic, w = None, np.inf, None
    for alpha in amax * np.geomspace(1.0, min_ratio, n_alphas):
        w = FISTA(max_iter=500, tol=1e-4 * alpha).solve(
            z, target, Quadratic(), pen.with_alpha(alpha), w0=w).coef
        coef, bic = _refit_bic(z, target, np.any(w != 0, axis=1) | np.isin(
            np.arange(z.shape[1]), free))
        if bic < best_bic:
            best, best_bic = coef, bic
    return best


def _refit_bic(z: Array, target: Array, keep: Array) -> tuple[Array, float]:
    coef = np.zeros((z.shape[1], target.shape[1]))
    coef[keep] = np.linalg.lstsq(z[:, keep], target, rcond=None)[0]
    rss = float(((target - z @ coef) ** 2).sum())
    size = target.size
    n_coef = keep.sum() * target.shape[1]
    return coef, size * np.log(max(rss, 1e-300) / size) + np.log(size) * n_coef
