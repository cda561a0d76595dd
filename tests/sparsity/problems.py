"""Small random problems shared by the sparsity and estimator tests."""

from __future__ import annotations

import numpy as np

GROUPS = [[0, 1, 2], [3, 4], [5, 6, 7, 8], [9], [10, 11]]
TREE = [[0, 1, 2, 3, 4, 5], [0, 1, 2], [3, 4], [1, 2], [6, 7, 8, 9, 10, 11], [6, 7]]
OVERLAP = [[0, 1, 2, 3], [3, 4, 5], [5, 6, 0], [7, 8, 9], [9, 10, 11], [2, 8]]


def regression(seed: int, n: int = 40, p: int = 12):
    """Correlated design with a group-sparse truth and noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 0.3 * rng.standard_normal((n, 1))
    beta = np.zeros(p)
    beta[[0, 1, 2, 5, 6]] = rng.standard_normal(5) * 2
    return X, X @ beta + 0.5 * rng.standard_normal(n) + 1.5


def classification(seed: int, n: int = 60, p: int = 12, n_classes: int = 2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = np.zeros((p, n_classes))
    W[:6] = rng.standard_normal((6, n_classes)) * 2
    y = (X @ W + rng.gumbel(size=(n, n_classes))).argmax(1)
    return X, y


def rel_gap(ours: float, ref: float) -> float:
    """How much worse our objective is than the reference, relative (negative: better)."""
    return (ours - ref) / abs(ref)
