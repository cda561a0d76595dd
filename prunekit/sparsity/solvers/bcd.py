"""Block coordinate descent with working sets and Anderson acceleration.

For group-separable penalties ``Σ_g (λ2_g‖w_g‖₂ + λ1·‖w_g‖₁)`` (L1, GroupLasso,
SparseGroupLasso) and the quadratic, binary logistic or multinomial
datafit. Each block takes an exact
prox step of length ``1/L_g``; the outer loop ranks groups by their KKT violation
(distance of ``−∇_g f`` to ``∂Ω_g``), solves the problem restricted to the worst ones plus
the current support, and grows the set until every group satisfies KKT within ``tol`` —
the strategy of skglm/celer (Massias et al. 2018, Bertrand et al. 2022). Hot loops are
numba-compiled when numba is installed (see :mod:`.._kernels`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend as B
from .._validation import check_problem, require
from .anderson import Anderson
from .blocks import BlockProblem
from .result import SolverResult

_PENALTY_NEEDS = ("block_structure",)
_DATAFIT_NEEDS = ("bcd_kind", "block_lipschitz", "value", "raw_grad")


# The kernels are imported on first use: numba's import alone costs seconds, and
# `import prunekit.sparsity` should stay cheap.
def _epoch_quadratic(prob: BlockProblem, state: np.ndarray, ws: np.ndarray) -> None:
    from .._kernels import bcd_epoch_quadratic

    bcd_epoch_quadratic(prob.X, state, prob.w, ws, prob.groups.indices, prob.groups.ptr,
                        prob.l2, prob.l1, prob.lips, prob.n)


def _epoch_logistic(prob: BlockProblem, state: np.ndarray, ws: np.ndarray) -> None:
    from .._kernels import bcd_epoch_logistic

    bcd_epoch_logistic(prob.X, prob.y, state, prob.w, ws, prob.groups.indices,
                       prob.groups.ptr, prob.l2, prob.l1, prob.lips, prob.n)


def _epoch_multinomial(prob: BlockProblem, state: np.ndarray, ws: np.ndarray) -> None:
    from .._kernels import bcd_epoch_multinomial

    bcd_epoch_multinomial(prob.X, prob.y, state, prob.w, ws, prob.groups.indices,
                          prob.groups.ptr, prob.l2, prob.l1, prob.lips, prob.n)


# datafit kind -> (Xw -> state, state -> Xw, epoch); the state is what the kernel updates
_KINDS = {
    "quadratic": (lambda y, xw: y - xw, lambda y, s: y - s, _epoch_quadratic),
    "logistic": (lambda y, xw: xw.copy(), lambda y, s: s, _epoch_logistic),
    "multinomial": (lambda y, xw: np.asfortranarray(xw), lambda y, s: s, _epoch_multinomial),
}


@dataclass
class BlockCD:
    """Working-set block coordinate descent (numpy inputs).

    Parameters
    ----------
    max_iter : int
        Outer (working-set) iterations.
    max_epochs : int
        Inner passes over the working set per outer iteration.
    tol : float
        Stop when the largest KKT violation over all groups is ``<= tol``.
    ws_start : int
        Smallest working set.
    anderson : int
        Anderson extrapolation over this many inner iterates (0 disables it).
    """

    max_iter: int = 50
    max_epochs: int = 5000
    tol: float = 1e-8
    ws_start: int = 10
    anderson: int = 5

    def solve(self, X: Any, y: Any, datafit: Any, penalty: Any, w0: Any = None) -> SolverResult:
        """Minimize ``datafit(y, Xw) + penalty(w)``; ``w0`` is copied, never modified."""
        require("BlockCD", "penalty", penalty, _PENALTY_NEEDS)
        require("BlockCD", "datafit", datafit, _DATAFIT_NEEDS)
        if datafit.bcd_kind not in _KINDS:
            raise TypeError(f"BlockCD: no kernel for datafit kind {datafit.bcd_kind!r}; "
                            f"use FISTA")
        if B.is_torch(X) or B.is_torch(y):
            raise TypeError("BlockCD works on numpy arrays; use FISTA for torch tensors")
        check_problem(X, y)
        if (y.ndim != 1) != (datafit.bcd_kind == "multinomial"):
            raise ValueError(f"y: BlockCD with a {type(datafit).__name__} datafit needs a "
                             f"{'2-D one-hot' if y.ndim == 1 else '1-D'} target")
        if hasattr(datafit, "check_target"):
            datafit.check_target(y)
        prob = BlockProblem.build(X, y, datafit, penalty, w0)
        to_state, to_xw, epoch = _KINDS[datafit.bcd_kind]
        state = to_state(prob.y, prob.X @ prob.w)
        history: list[tuple[int, float, float]] = []
        crit, epochs = np.inf, 0
        for _ in range(self.max_iter):
            kkt = prob.kkt(to_xw(prob.y, state), datafit)
            crit = float(kkt.max(initial=0.0))
            history.append((epochs, prob.objective(to_xw(prob.y, state), datafit), crit))
            if crit <= self.tol:
                break
            ws = prob.working_set(kkt, self.ws_start)
            inner_tol = max(self.tol, 0.3 * crit)
            state, n = self._inner(prob, datafit, state, ws, inner_tol, to_state, to_xw, epoch)
            epochs += n
        xw = to_xw(prob.y, state)
        return SolverResult(prob.w, epochs, crit, prob.objective(xw, datafit),
                            crit <= self.tol, history)

    def _inner(self, prob, datafit, state, ws, inner_tol, to_state, to_xw, epoch):
        """Epochs on working set ``ws`` until its own KKT violation is ``<= inner_tol``."""
        acc = Anderson(self.anderson, prob.ws_rows(ws)) if self.anderson else None
        n = 0
        for n in range(1, self.max_epochs + 1):
            epoch(prob, state, ws)
            if acc is not None:
                state = acc.step(prob, datafit, state, to_state, to_xw)
            if n % 10 == 0:
                kkt = prob.kkt(to_xw(prob.y, state), datafit, ws)
                if kkt.max(initial=0.0) <= inner_tol:
                    break
        return state, n
