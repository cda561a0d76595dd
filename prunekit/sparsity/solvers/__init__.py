"""Solvers for ``min_w f(Xw) + Ω(w)``: FISTA, block coordinate descent, ADMM."""

from .admm import ADMM
from .bcd import BlockCD
from .fista import FISTA
from .result import SolverResult

__all__ = ["FISTA", "BlockCD", "ADMM", "SolverResult"]
