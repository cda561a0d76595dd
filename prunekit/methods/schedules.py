"""Sparsity schedules: one-shot, iterative (geometric), and gradual (Zhu & Gupta 2017).

Each schedule is a pure function ``step -> target sparsity``; the drivers in
:mod:`prunekit.methods.loops` call a pruning function at the steps where it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Schedule = Callable[[int], float]


def _check(final: float, initial: float = 0.0) -> None:
    if not 0.0 <= initial <= final < 1.0:
        raise ValueError(f"need 0 <= initial <= final < 1, got initial={initial}, final={final}")


def one_shot(final: float, at: int = 0) -> Schedule:
    """``final`` from step ``at`` on, 0 before."""
    _check(final)
    return lambda step: final if step >= at else 0.0


def iterative(final: float, rounds: int, every: int) -> Schedule:
    """Round ``r = 1..R`` (at step ``r·every``) prunes to ``1 − (1 − s_f)^(r/R)``: each round
    removes the same fraction of the remaining weights (Han et al. 2015; Frankle & Carbin)."""
    _check(final)
    if rounds < 1 or every < 1:
        raise ValueError(f"rounds and every must be >= 1, got {rounds}, {every}")

    def schedule(step: int) -> float:
        r = min(step // every, rounds)
        return 1.0 - (1.0 - final) ** (r / rounds)
    return schedule


@dataclass(frozen=True)
class Cubic:
    """Gradual pruning of Zhu & Gupta (2017):

    ``s_t = s_f + (s_i − s_f)·(1 − (t − t₀)/(n·Δt))³`` for ``t₀ ≤ t ≤ t₀ + n·Δt``,
    evaluated at multiples of ``Δt`` (the pruning frequency); ``s_i`` before, ``s_f`` after.
    """

    final: float
    begin: int
    n_steps: int
    every: int = 1
    initial: float = 0.0

    def __post_init__(self) -> None:
        _check(self.final, self.initial)
        if self.n_steps < 1 or self.every < 1 or self.begin < 0:
            raise ValueError("Cubic: n_steps, every >= 1 and begin >= 0 are required")

    def __call__(self, step: int) -> float:
        t = min(((step - self.begin) // self.every) * self.every, self.n_steps * self.every)
        if t <= 0:
            return self.initial
        frac = 1.0 - t / (self.n_steps * self.every)
        return self.final + (self.initial - self.final) * frac**3


def gradual(final: float, begin: int, end: int, every: int = 1, initial: float = 0.0) -> Cubic:
    """Cubic schedule from ``begin`` to ``end`` (steps), pruning every ``every`` steps."""
    if end <= begin:
        raise ValueError(f"end must be > begin, got begin={begin}, end={end}")
    return Cubic(final, begin, max((end - begin) // every, 1), every, initial)
