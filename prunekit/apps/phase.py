"""Phase-transition experiments: probability of exact recovery vs m/n and k/n.

For every (k, m) cell, ``trials`` random problems are drawn (signal with the chosen
structure, measurement operator) and *the same* problems are given to every method.
A trial succeeds when ‖x̂ − x‖ / ‖x‖ < ``success_tol``. :func:`m_at_level` reads off the
smallest m at which a method reaches a success level (90 % by default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from prunekit.apps.operators import make_operator
from prunekit.apps.sensing import RECOVERY, StructureInfo
from prunekit.apps.signals import (
    block_groups,
    block_sparse_signal,
    sparse_signal,
    tree_sparse_signal,
)
from prunekit.apps.trees import binary_wavelet_tree

Array = np.ndarray
STRUCTURES = ("sparse", "block", "tree")


@dataclass(frozen=True)
class PhaseConfig:
    """One phase-transition grid.

    structure : "sparse", "block" or "tree" (1-D dyadic wavelet tree; n a power of 2).
    ks : sparsity levels (for "block", multiples of ``block_size``).
    ms : measurement counts.
    """

    n: int = 256
    structure: str = "block"
    block_size: int = 8
    ks: tuple[int, ...] = (32,)
    ms: tuple[int, ...] = (32, 40, 48, 56, 64, 80, 96, 128)
    trials: int = 20
    operator: str = "gaussian"
    success_tol: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {self.structure!r}")
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        if self.structure == "block" and any(k % self.block_size for k in self.ks):
            raise ValueError(f"ks must be multiples of block_size={self.block_size}")
        if any(not 1 <= m <= self.n for m in self.ms) or any(not 0 < k <= self.n for k in self.ks):
            raise ValueError("ms and ks must lie in [1, n]")


def make_problem(config: PhaseConfig, k: int, rng: np.random.Generator
                 ) -> tuple[Array, StructureInfo]:
    """A random signal with the configured structure and what methods may know of it."""
    n = config.n
    if config.structure == "sparse":
        x, _ = sparse_signal(n, k, rng)
        return x, StructureInfo(n=n, k=k)
    if config.structure == "block":
        b = config.block_size
        x, _ = block_sparse_signal(n, b, k // b, rng)
        return x, StructureInfo(n=n, k=k, groups=block_groups(n, b), n_blocks=k // b)
    parent = binary_wavelet_tree(n)
    x, _ = tree_sparse_signal(parent, k, rng)
    return x, StructureInfo(n=n, k=k, parent=parent)


def _trial_rng(config: PhaseConfig, k: int, m: int, t: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, k, m, t])


def phase_transition(methods: Sequence[str], config: PhaseConfig, progress: bool = True,
                     extra: dict[str, Callable] | None = None) -> dict:
    """Success rates ``rates[method][i_k][i_m]`` on one shared set of problems.

    ``extra`` adds methods not in :data:`~prunekit.apps.sensing.RECOVERY` (e.g. an
    incumbent library), with the same signature ``(A, y, info) -> x``.
    """
    table = {**RECOVERY, **(extra or {})}
    unknown = [m for m in methods if m not in table]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {sorted(table)}")
    wins = {name: np.zeros((len(config.ks), len(config.ms)), dtype=int) for name in methods}
    cells = [(i, k, j, m) for i, k in enumerate(config.ks) for j, m in enumerate(config.ms)]
    for i, k, j, m in _progress(cells, progress, "phase transition"):
        for t in range(config.trials):
            rng = _trial_rng(config, k, m, t)
            x, info = make_problem(config, k, rng)
            a = make_operator(config.operator, m, config.n, rng).dense()
            y = a @ x
            for name in methods:
                x_hat = np.asarray(table[name](a, y, info))
                err = np.linalg.norm(x_hat - x) / max(np.linalg.norm(x), 1e-300)
                wins[name][i, j] += bool(err < config.success_tol)
    rates = {name: w / config.trials for name, w in wins.items()}
    return {"config": asdict(config), "methods": list(methods),
            "rates": {k: v.tolist() for k, v in rates.items()},
            "m_at_90": {name: [m_at_level(config.ms, r) for r in rates[name]]
                        for name in methods}}


def m_at_level(ms: Sequence[int], rates: Sequence[float], level: float = 0.9) -> int | None:
    """Smallest m from which the success rate stays ≥ ``level`` (None if never)."""
    rates = np.asarray(rates)
    ok = rates >= level - 1e-12
    for j in range(len(ms)):
        if ok[j:].all():
            return int(ms[j])
    return None


def _progress(items: list, enabled: bool, label: str):
    if not enabled:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=label)
