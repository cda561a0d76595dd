"""The block-separable problem that :class:`BlockCD` works on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..groups import Groups


@dataclass
class BlockProblem:
    """``f(Xw) + Σ_g (l2_g‖w_g‖₂ + Σ_{j∈g} l1_j|w_j|)`` over a partition of the features.

    ``X`` is float64 Fortran-ordered; ``w`` is the solver's own copy (updated in place);
    ``lips`` holds the per-group Lipschitz constants of ``∇_g f``.
    """

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    groups: Groups
    l2: np.ndarray
    l1: np.ndarray
    lips: np.ndarray
    n: int

    @classmethod
    def build(cls, X: Any, y: Any, datafit: Any, penalty: Any, w0: Any) -> BlockProblem:
        X = np.asfortranarray(X, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        p = X.shape[1]
        groups, l2, l1 = penalty.block_structure(p)
        shape = (p,) if y.ndim == 1 else (p, y.shape[1])
        if w0 is None:
            w = np.zeros(shape)
        else:
            w = np.array(w0, dtype=np.float64, copy=True)
            if w.shape != shape:
                raise ValueError(f"w0: expected shape {shape}, got {np.shape(w0)}")
        lips = datafit.block_lipschitz(X, groups)
        return cls(X, y, w, groups, np.asarray(l2, float), np.asarray(l1, float), lips,
                   X.shape[0])

    def kkt(self, xw: np.ndarray, datafit: Any, ws: np.ndarray | None = None) -> np.ndarray:
        """KKT violation of every group (or of the groups in ``ws``)."""
        from .._kernels import sgl_subdiff  # lazy: numba is slow to import

        raw = datafit.raw_grad(self.y, xw)
        if ws is None:
            ws = np.arange(self.groups.n_groups)
            grad = self.X.T @ raw
        else:
            rows = self.ws_rows(ws)
            grad = np.zeros_like(self.w)
            grad[rows] = self.X[:, rows].T @ raw
        return sgl_subdiff(_rows2d(self.w), _rows2d(grad), ws, self.groups.indices,
                           self.groups.ptr, self.l2, self.l1)

    def group_sqnorms(self) -> np.ndarray:
        rows = _rows2d(self.w)
        return np.add.reduceat((rows * rows).sum(1)[self.groups.indices], self.groups.ptr[:-1])

    def penalty_value(self) -> float:
        norms = np.sqrt(self.group_sqnorms())
        return float(self.l2 @ norms + self.l1 @ np.abs(_rows2d(self.w)).sum(1))

    def objective(self, xw: np.ndarray, datafit: Any) -> float:
        return datafit.value(self.y, xw) + self.penalty_value()

    def support(self) -> np.ndarray:
        """Groups with a non-zero coefficient."""
        return self.group_sqnorms() > 0

    def working_set(self, kkt: np.ndarray, ws_start: int) -> np.ndarray:
        """The current support plus the worst KKT violators: ``max(ws_start, 2·|support|)``."""
        support = self.support()
        size = min(self.groups.n_groups, max(ws_start, 2 * int(support.sum())))
        priority = np.where(support, np.inf, kkt)
        ws = np.argpartition(-priority, size - 1)[:size]
        return np.sort(ws).astype(np.int64)

    def ws_rows(self, ws: np.ndarray) -> np.ndarray:
        """Feature indices of the groups in ``ws``."""
        starts = self.groups.ptr[ws]
        lens = self.groups.ptr[ws + 1] - starts
        offsets = np.repeat(starts - np.cumsum(lens) + lens, lens)
        return self.groups.indices[offsets + np.arange(lens.sum())]


def _rows2d(a: np.ndarray) -> np.ndarray:
    """``a`` as (p, K): a view with K = 1 for a vector."""
    return a.reshape(a.shape[0], -1)
