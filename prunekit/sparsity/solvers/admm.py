"""ADMM for overlapping groups: duplicate each group's variables, enforce consensus."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend as B
from .._validation import check_problem, require
from ..prox import group_scale
from .result import SolverResult

_PENALTY_NEEDS = ("overlap_structure", "value")
_DATAFIT_NEEDS = ("admm_solver", "value")


@dataclass
class ADMM:
    """Consensus ADMM for ``f(Xw) + Σ_g λ_g‖w_g‖₂`` with overlapping groups.

    Each group gets its own copy ``z_g`` of ``w_g`` (stacked ``z = Gw``); the scaled
    iteration is ``w ← argmin f(Xw) + ρ/2‖Gw − z + u‖²`` (one cached linear solve),
    ``z_g ← group-soft-threshold(G_g w + u_g, λ_g/ρ)`` (vectorized), ``u ← u + Gw − z``.
    ``ρ`` is rebalanced when the primal and dual residuals differ by 10× (Boyd et al.
    2011, §3.4.1). At the end, every feature of a group whose copy ``z_g`` is zero is set
    to zero (the support of the limit; tiny copies too when that does not raise the
    objective), and the objective is reported there.
    ``stop_crit`` is ``max(primal, dual)`` residual relative to the Boyd tolerances.
    """

    max_iter: int = 5000
    tol: float = 1e-8
    rho: float = 1.0
    adaptive_rho: bool = True

    def solve(self, X: Any, y: Any, datafit: Any, penalty: Any, w0: Any = None) -> SolverResult:
        require("ADMM", "penalty", penalty, _PENALTY_NEEDS)
        require("ADMM", "datafit", datafit, _DATAFIT_NEEDS)
        if B.is_torch(X) or B.is_torch(y):
            raise TypeError("ADMM works on numpy arrays; use FISTA for torch tensors")
        check_problem(X, y)
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        p = X.shape[1]
        groups, lam = penalty.overlap_structure(p)
        idx, gid, counts = groups.indices, groups.group_ids, groups.counts.astype(float)
        w = np.zeros(p) if w0 is None else np.array(w0, dtype=float, copy=True)
        z, u, rho = w[idx].copy(), np.zeros(len(idx)), self.rho
        solve = datafit.admm_solver(X, y, rho * counts)
        crit, it = math.inf, 0
        history: list[tuple[int, float, float]] = []
        for it in range(1, self.max_iter + 1):
            w = solve(rho * np.bincount(idx, weights=z - u, minlength=p))
            gw = w[idx]
            z_old, v = z, gw + u
            norms = np.sqrt(np.bincount(gid, weights=v * v, minlength=groups.n_groups))
            z = v * group_scale(norms, lam / rho)[gid]
            u = u + gw - z
            primal = np.linalg.norm(gw - z)
            dual = rho * np.linalg.norm(np.bincount(idx, weights=z - z_old, minlength=p))
            eps_p = self.tol * (math.sqrt(len(idx)) + max(np.linalg.norm(gw), np.linalg.norm(z)))
            eps_d = self.tol * (math.sqrt(p) + rho * np.linalg.norm(np.bincount(
                idx, weights=u, minlength=p)))
            crit = max(primal / eps_p, dual / eps_d) * self.tol
            if it % 50 == 0:
                history.append((it, datafit.value(y, X @ w) + penalty.value(w), crit))
            if primal <= eps_p and dual <= eps_d:
                break
            if self.adaptive_rho and it % 10 == 0 and max(primal, dual) > 10 * min(primal, dual):
                scale = 2.0 if primal > dual else 0.5
                rho, u = rho * scale, u / scale
                solve = datafit.admm_solver(X, y, rho * counts)
        w, obj = _snap(w, z, groups, lambda v: datafit.value(y, X @ v) + penalty.value(v),
                       math.sqrt(self.tol))
        return SolverResult(w, it, crit, obj, crit <= self.tol, history)


def _snap(w: np.ndarray, z: np.ndarray, groups: Any, objective, rel: float):
    """Zero the features of groups whose copy is zero, or tiny if that lowers the objective.

    ADMM reaches exact zeros only asymptotically near a group's threshold; a group whose
    copy has norm ``<= rel·max(1, max_g ‖z_g‖)`` is also zeroed, but only when the
    objective does not get worse, so the result is never worse than ``w``.
    """
    norms = np.sqrt(np.bincount(groups.group_ids, weights=z * z, minlength=groups.n_groups))
    live = groups.weights > 0
    plain = _zero_groups(w, groups, (norms == 0) & live)
    best = (plain, objective(plain))
    tiny = (norms <= rel * max(1.0, norms.max(initial=0.0))) & live
    if np.any(tiny & (norms > 0)):
        snapped = _zero_groups(w, groups, tiny)
        value = objective(snapped)
        if value <= best[1]:
            best = (snapped, value)
    return best


def _zero_groups(w: np.ndarray, groups: Any, dead: np.ndarray) -> np.ndarray:
    out = w.copy()
    out[groups.indices[dead[groups.group_ids]]] = 0.0
    return out
