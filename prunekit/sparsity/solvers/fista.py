"""FISTA with backtracking and adaptive restart, on numpy arrays or torch tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend as B
from .._validation import check_problem, require
from .result import SolverResult

_DATAFIT_NEEDS = ("value", "raw_grad", "gradient", "lipschitz")
_PENALTY_NEEDS = ("value", "prox", "subdiff_distance")


@dataclass
class FISTA:
    """Accelerated proximal gradient (Beck & Teboulle 2009) for ``f(Xw) + Ω(w)``.

    ``x⁺ = prox_{Ω/L}(z − ∇f(z)/L)``, ``z ← x⁺ + (t − 1)/t⁺ · (x⁺ − x)``. With
    ``backtracking`` the step ``1/L`` shrinks until ``f(x⁺) ≤ f(z) + ⟨∇f(z), x⁺ − z⟩ +
    L/2‖x⁺ − z‖²``; with ``restart`` the momentum is reset whenever
    ``⟨z − x⁺, x⁺ − x⟩ > 0`` (O'Donoghue & Candès 2015). Stops when the largest
    subdifferential distance of the penalty is ``<= tol`` (checked every
    ``check_every`` iterations). Torch tensors (CPU or CUDA) stay on their device.
    """

    max_iter: int = 1000
    tol: float = 1e-8
    backtracking: bool = True
    restart: bool = True
    check_every: int = 10

    def solve(self, X: Any, y: Any, datafit: Any, penalty: Any, w0: Any = None) -> SolverResult:
        """Minimize ``datafit(y, Xw) + penalty(w)`` starting from ``w0`` (not modified)."""
        require("FISTA", "datafit", datafit, _DATAFIT_NEEDS)
        require("FISTA", "penalty", penalty, _PENALTY_NEEDS)
        check_problem(X, y)
        if hasattr(datafit, "check_target"):
            datafit.check_target(y)
        x = _start(X, y, datafit, w0)
        lip = max(datafit.lipschitz(X), 1e-12)
        Xx = X @ x
        z, Xz, t = x, Xx, 1.0
        history: list[tuple[int, float, float]] = []
        crit, it = math.inf, 0
        for it in range(1, self.max_iter + 1):
            x_new, Xx_new, lip = self._step(X, y, datafit, penalty, z, Xz, lip)
            t, beta = self._momentum(t, z, x, x_new)
            z = x_new + beta * (x_new - x) if beta else x_new
            Xz = Xx_new + beta * (Xx_new - Xx) if beta else Xx_new
            x, Xx = x_new, Xx_new
            if it % self.check_every == 0 or it == self.max_iter:
                crit = _crit(X, y, datafit, penalty, x, Xx)
                history.append((it, _objective(y, datafit, penalty, x, Xx), crit))
                if crit <= self.tol:
                    break
        return SolverResult(x, it, crit, _objective(y, datafit, penalty, x, Xx),
                            crit <= self.tol, history)

    def _step(self, X, y, datafit, penalty, z, Xz, lip):
        grad = datafit.gradient(X, y, Xz)
        fz = datafit.value(y, Xz)
        while True:
            x_new = penalty.prox(z - grad / lip, 1.0 / lip)
            Xx_new = X @ x_new
            if not self.backtracking:
                return x_new, Xx_new, lip
            d = x_new - z
            bound = fz + float((grad * d).sum()) + 0.5 * lip * float((d * d).sum())
            if datafit.value(y, Xx_new) <= bound + 1e-12 * abs(fz):
                return x_new, Xx_new, lip
            lip *= 2.0

    def _momentum(self, t: float, z: Any, x: Any, x_new: Any) -> tuple[float, float]:
        """New ``t`` and extrapolation weight; restart (t = 1, no momentum) when needed."""
        if self.restart and float(((z - x_new) * (x_new - x)).sum()) > 0:
            return 1.0, 0.0
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        return t_new, (t - 1.0) / t_new


def _start(X: Any, y: Any, datafit: Any, w0: Any) -> Any:
    shape = datafit.coef_shape(X, y) if hasattr(datafit, "coef_shape") else (X.shape[1],)
    if w0 is None:
        return B.like(np.zeros(shape), X)
    if tuple(w0.shape) != tuple(shape):
        raise ValueError(f"w0: expected shape {tuple(shape)}, got {tuple(w0.shape)}")
    return B.copy(B.like(w0, X))


def _crit(X, y, datafit, penalty, x, Xx) -> float:
    dist = penalty.subdiff_distance(x, datafit.gradient(X, y, Xx))
    return float(dist.max()) if dist.shape[0] else 0.0


def _objective(y, datafit, penalty, x, Xx) -> float:
    return datafit.value(y, Xx) + penalty.value(x)
