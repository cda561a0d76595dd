"""Random test signals: plain-, block- and tree-sparse vectors.

Nonzero values are i.i.d. standard Gaussian (the usual phase-transition ensemble);
every generator returns ``(x, support)`` with ``support`` a boolean mask.
"""

from __future__ import annotations

import numpy as np

from prunekit.apps.trees import check_parent, children_lists

Array = np.ndarray


def _rng(seed: np.random.Generator | int | None) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check_k(k: int, n: int, name: str = "k") -> None:
    if not (0 <= k <= n):
        raise ValueError(f"{name} must be in [0, {n}], got {k}")


def _fill(support: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    x = np.zeros(len(support))
    x[support] = rng.standard_normal(int(support.sum()))
    return x, support


def sparse_signal(n: int, k: int, rng: np.random.Generator | int | None = None
                  ) -> tuple[Array, Array]:
    """k nonzeros at uniformly random positions."""
    _check_k(k, n)
    rng = _rng(rng)
    support = np.zeros(n, dtype=bool)
    support[rng.choice(n, size=k, replace=False)] = True
    return _fill(support, rng)


def block_sparse_signal(n: int, block_size: int, n_blocks: int,
                        rng: np.random.Generator | int | None = None) -> tuple[Array, Array]:
    """``n_blocks`` active contiguous blocks of ``block_size`` (n must be a multiple)."""
    if block_size < 1 or n % block_size:
        raise ValueError(f"block_size must divide n={n}, got {block_size}")
    _check_k(n_blocks, n // block_size, "n_blocks")
    rng = _rng(rng)
    active = rng.choice(n // block_size, size=n_blocks, replace=False)
    support = np.zeros((n // block_size, block_size), dtype=bool)
    support[active] = True
    return _fill(support.ravel(), rng)


def block_groups(n: int, block_size: int) -> list[list[int]]:
    """Contiguous blocks [0..b-1], [b..2b-1], ... as index lists."""
    if block_size < 1 or n % block_size:
        raise ValueError(f"block_size must divide n={n}, got {block_size}")
    return [list(range(s, s + block_size)) for s in range(0, n, block_size)]


def tree_sparse_signal(parent: Array, k: int, rng: np.random.Generator | int | None = None,
                       decay: float = 0.0) -> tuple[Array, Array]:
    """A rooted subtree of k nodes grown at random from the roots, Gaussian values.

    The support grows one node at a time by adding a uniformly chosen child of the
    current support (a random rooted subtree). With ``decay > 0`` the values shrink
    with depth like ``2^(-decay·depth)``, as wavelet coefficients of piecewise-smooth
    signals do.
    """
    parent = check_parent(parent)
    _check_k(k, len(parent))
    rng = _rng(rng)
    children = children_lists(parent)
    frontier = list(np.flatnonzero(parent == -1))
    support = np.zeros(len(parent), dtype=bool)
    level = np.zeros(len(parent))
    for _ in range(k):
        node = frontier.pop(rng.integers(len(frontier)))
        support[node] = True
        for c in children[node]:
            level[c] = level[node] + 1
        frontier.extend(children[node])
    x, support = _fill(support, rng)
    return x * 2.0 ** (-decay * level), support
