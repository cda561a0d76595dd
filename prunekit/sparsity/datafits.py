"""Datafits ``f(w) = F(Xw)``: value, gradient and Lipschitz constants.

Each datafit works from ``Xw`` so that solvers can keep it up to date cheaply.
``raw_grad(y, Xw)`` is ``∂F/∂(Xw)``, hence ``∇f(w) = Xᵀ·raw_grad``. All accept numpy
arrays or torch tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _backend as B
from .groups import Groups

__all__ = ["Quadratic", "Logistic", "MultinomialLogistic", "spectral_norm_sq"]


class _Datafit:
    """Shared: gradient from ``raw_grad``, Lipschitz constants from ``curvature``."""

    curvature: float = 1.0  # bound on F'' per sample

    def gradient(self, X: Any, y: Any, Xw: Any) -> Any:
        """``∇f(w) = Xᵀ·raw_grad(y, Xw)``."""
        return X.T @ self.raw_grad(y, Xw)

    def lipschitz(self, X: Any) -> float:
        """Global Lipschitz constant of ``∇f``: ``curvature·‖X‖₂²/n``."""
        return self.curvature * spectral_norm_sq(X) / X.shape[0]

    def block_lipschitz(self, X: np.ndarray, groups: Groups) -> np.ndarray:
        """Per group: ``curvature·‖X_g‖₂²/n`` (largest eigenvalue of ``X_gᵀX_g``)."""
        out = np.empty(groups.n_groups)
        sizes = groups.sizes
        for size in np.unique(sizes):  # one batched eigvalsh per group size
            which = np.flatnonzero(sizes == size)
            cols = groups.indices[groups.ptr[which][:, None] + np.arange(size)]
            if size == 1:
                out[which] = np.einsum("ij,ij->j", X[:, cols[:, 0]], X[:, cols[:, 0]])
                continue
            blocks = X[:, cols.ravel()].reshape(X.shape[0], len(which), size).transpose(1, 0, 2)
            gram = np.matmul(blocks.transpose(0, 2, 1), blocks)  # batched X_gᵀX_g
            out[which] = np.linalg.eigvalsh(gram)[:, -1]
        return self.curvature * out / X.shape[0]

    def coef_shape(self, X: Any, y: Any) -> tuple[int, ...]:
        return (X.shape[1],) if y.ndim == 1 else (X.shape[1], y.shape[1])

    def check_target(self, y: Any) -> None:
        """Validate ``y`` for this datafit (nothing to check by default)."""


class Quadratic(_Datafit):
    """Least squares ``f(w) = 1/(2n)·‖y − Xw‖²`` (``y`` may be 2-D: multi-output)."""

    bcd_kind = "quadratic"

    def value(self, y: Any, Xw: Any) -> float:
        r = y - Xw
        return float((r * r).sum()) / (2 * y.shape[0])

    def raw_grad(self, y: Any, Xw: Any) -> Any:
        return (Xw - y) / y.shape[0]

    def admm_solver(self, X: np.ndarray, y: np.ndarray, diag: np.ndarray):
        """A function ``b ↦ w`` solving ``(XᵀX/n + diag(d))·w = Xᵀy/n + b`` (factored once).

        Cholesky of the ``p×p`` system when ``p <= n``, otherwise of the ``n×n`` system
        from the Woodbury identity: ``(D + XᵀX/n)⁻¹ = D⁻¹ − D⁻¹Xᵀ(nI + XD⁻¹Xᵀ)⁻¹XD⁻¹``.
        """
        from scipy.linalg import cho_factor, cho_solve

        n, p = X.shape
        xty = X.T @ y / n
        if p <= n:
            fac = cho_factor(X.T @ X / n + np.diag(diag))
            return lambda b: cho_solve(fac, xty + b)
        inv_d = 1.0 / diag
        fac = cho_factor(n * np.eye(n) + (X * inv_d) @ X.T)

        def solve(b: np.ndarray) -> np.ndarray:
            r = inv_d * (xty + b)
            return r - inv_d * (X.T @ cho_solve(fac, X @ r))

        return solve


class Logistic(_Datafit):
    """Binary logistic loss ``f(w) = 1/n·Σ log(1 + exp(−y_i x_iᵀw))`` with ``y ∈ {−1, +1}``."""

    bcd_kind = "logistic"
    curvature = 0.25

    def value(self, y: Any, Xw: Any) -> float:
        return float(_logaddexp0(-y * Xw).sum()) / y.shape[0]

    def raw_grad(self, y: Any, Xw: Any) -> Any:
        return -y * _sigmoid(-y * Xw) / y.shape[0]

    def check_target(self, y: Any) -> None:
        vals = np.unique(B.to_numpy(y))
        if y.ndim != 1 or not set(vals.tolist()) <= {-1.0, 1.0}:
            raise ValueError("y: Logistic needs a 1-D target with values in {-1, +1}")


class MultinomialLogistic(_Datafit):
    """Softmax cross-entropy ``f(W) = 1/n·Σ_i (logsumexp(x_iᵀW) − x_iᵀW y_i)``.

    ``y`` is one-hot, shape (n, K); ``W`` has shape (p, K) and groups act on its rows
    (one feature across all classes).
    """

    bcd_kind = "multinomial"
    curvature = 0.5  # ‖diag(p) − ppᵀ‖₂ ≤ 1/2

    def value(self, y: Any, Xw: Any) -> float:
        return float((_logsumexp(Xw) - (y * Xw).sum(1)).sum()) / y.shape[0]

    def raw_grad(self, y: Any, Xw: Any) -> Any:
        return (_softmax(Xw) - y) / y.shape[0]

    def check_target(self, y: Any) -> None:
        yy = B.to_numpy(y)
        if yy.ndim != 2 or not np.all((yy == 0) | (yy == 1)) or not np.all(yy.sum(1) == 1):
            raise ValueError("y: MultinomialLogistic needs a one-hot target of shape "
                             "(n_samples, n_classes)")


def spectral_norm_sq(X: Any, n_iter: int = 100) -> float:
    """``‖X‖₂²`` (largest eigenvalue of ``XᵀX``): exact for small ``X``, else power method.

    The power-method estimate is raised by 1% so that it errs on the safe side.
    """
    if not B.is_torch(X) and min(X.shape) <= 1000:
        return float(np.linalg.norm(X, 2) ** 2) if X.size else 0.0
    v = B.like(np.random.default_rng(0).standard_normal(X.shape[1]), X)
    est = 0.0
    for _ in range(n_iter):
        u = X.T @ (X @ v)
        new = float(B.sqrt((u * u).sum()))
        if new == 0.0:
            return 0.0
        v = u / new
        if abs(new - est) <= 1e-6 * new:
            break
        est = new
    return 1.01 * new


def _logaddexp0(z: Any) -> Any:
    """``log(1 + exp(z))`` without overflow."""
    if B.is_torch(z):
        import torch

        return torch.nn.functional.softplus(z)
    return np.logaddexp(0.0, z)


def _sigmoid(z: Any) -> Any:
    if B.is_torch(z):
        return z.sigmoid()
    from scipy.special import expit

    return expit(z)


def _logsumexp(z: Any) -> Any:
    """Row-wise ``log Σ_k exp(z_k)``, shifted by the row max (no overflow)."""
    if B.is_torch(z):
        return z.logsumexp(1)
    top = z.max(1)
    return top + np.log(np.exp(z - top[:, None]).sum(1))


def _softmax(z: Any) -> Any:
    if B.is_torch(z):
        return z.softmax(1)
    e = np.exp(z - z.max(1)[:, None])
    return e / e.sum(1)[:, None]
