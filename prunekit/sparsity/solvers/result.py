"""What every solver returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SolverResult:
    """Solution of ``min_w f(Xw) + Ω(w)``.

    Attributes
    ----------
    coef : array or tensor
        The solution ``w`` (type of the input ``X``).
    n_iter : int
        Iterations (FISTA/ADMM) or epochs (block CD) run.
    stop_crit : float
        Final optimality measure: the largest distance of ``−∇f(w)`` to ``∂Ω(w)`` over
        blocks (FISTA, block CD), or the larger ADMM residual.
    objective : float
        ``f(Xw) + Ω(w)`` at ``coef``.
    converged : bool
        ``stop_crit <= tol`` when the solver stopped.
    history : list of (n_iter, objective, stop_crit)
        Recorded at every optimality check.
    """

    coef: Any
    n_iter: int
    stop_crit: float
    objective: float
    converged: bool
    history: list[tuple[int, float, float]] = field(default_factory=list)
