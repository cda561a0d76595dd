"""Solvers for ``min_w f(Xw) + Ω(w)``: FISTA, block coordinate descent, ADMM."""

from .fista import FISTA
from .result import SolverResult

__all__ = ["FISTA", "SolverResult"]
