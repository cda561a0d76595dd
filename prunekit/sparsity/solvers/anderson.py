"""Anderson extrapolation of block-CD iterates (offline, with a safeguard)."""

from __future__ import annotations

from typing import Any

import numpy as np


class Anderson:
    """Every ``k`` epochs, extrapolate the last ``k + 1`` iterates restricted to ``rows``.

    With ``U`` the matrix of successive differences, weights ``c = z/Σz`` solve
    ``UUᵀz = 1``; the extrapolated point ``Σ c_i w_i`` is kept only if it lowers the
    objective (Bertrand & Massias 2021). Coordinates outside ``rows`` must be zero.
    """

    def __init__(self, k: int, rows: np.ndarray):
        self.k = k
        self.rows = rows
        self.iterates: list[np.ndarray] = []
        self.X_rows: np.ndarray | None = None

    def step(self, prob: Any, datafit: Any, state: np.ndarray, to_state, to_xw) -> np.ndarray:
        self.iterates.append(prob.w[self.rows].copy())
        if len(self.iterates) <= self.k:
            return state
        its = np.asarray(self.iterates)
        shape = its.shape[1:]
        its = its.reshape(len(its), -1)
        self.iterates = []
        diffs = np.diff(its, axis=0)
        gram = diffs @ diffs.T
        try:
            z = np.linalg.solve(gram + 1e-12 * np.trace(gram) * np.eye(self.k), np.ones(self.k))
        except np.linalg.LinAlgError:
            return state
        if not np.all(np.isfinite(z)) or z.sum() == 0:
            return state
        w_acc = ((z / z.sum()) @ its[1:]).reshape(shape)
        if self.X_rows is None:
            self.X_rows = np.asfortranarray(prob.X[:, self.rows])
        xw_acc = self.X_rows @ w_acc
        old = prob.w[self.rows].copy()
        before = prob.objective(to_xw(prob.y, state), datafit)
        prob.w[self.rows] = w_acc
        if prob.objective(xw_acc, datafit) < before:
            return to_state(prob.y, xw_acc)
        prob.w[self.rows] = old
        return state
