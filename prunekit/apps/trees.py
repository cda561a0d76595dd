"""Rooted trees (forests) over coefficient indices, stored as a parent array.

``parent[i]`` is the index of node i's parent, or -1 for a root. Wavelet coefficients
form such a tree: a coefficient at scale j has children at scale j+1 covering the same
place. A *tree-sparse* support is closed under taking parents (rooted, connected).

The tree group-lasso penalty uses one group per node: the node and all its descendants
(Jenatton et al., 2011); :func:`subtree_groups` builds them.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def check_parent(parent: Array) -> Array:
    """Validate a parent array (int, -1 for roots, parents before... any order, acyclic)."""
    parent = np.asarray(parent)
    if parent.ndim != 1 or not np.issubdtype(parent.dtype, np.integer):
        raise TypeError("parent must be a 1-D integer array")
    n = len(parent)
    if np.any((parent < -1) | (parent >= n)) or np.any(parent == np.arange(n)):
        raise ValueError("parent entries must be -1 or another node's index in [0, n)")
    if len(topological_order(parent)) != n:
        raise ValueError("parent describes a cycle, not a forest")
    return parent


def topological_order(parent: Array) -> Array:
    """Nodes ordered so that every parent comes before its children (BFS from roots)."""
    parent = np.asarray(parent)
    children = children_lists(parent)
    order = list(np.flatnonzero(parent == -1))
    head = 0
    while head < len(order):
        order.extend(children[order[head]])
        head += 1
    return np.asarray(order, dtype=int)


def children_lists(parent: Array) -> list[list[int]]:
    """children[i] = list of the children of node i."""
    children: list[list[int]] = [[] for _ in range(len(parent))]
    for i, p in enumerate(np.asarray(parent)):
        if p >= 0:
            children[p].append(i)
    return children


def depth(parent: Array) -> Array:
    """Depth of each node (roots have depth 0)."""
    parent = np.asarray(parent)
    d = np.zeros(len(parent), dtype=int)
    for i in topological_order(parent):
        if parent[i] >= 0:
            d[i] = d[parent[i]] + 1
    return d


def subtree_groups(parent: Array) -> list[list[int]]:
    """For each node, the sorted indices of the node and all its descendants."""
    parent = np.asarray(parent)
    members: list[list[int]] = [[i] for i in range(len(parent))]
    for i in topological_order(parent)[::-1]:          # leaves first
        if parent[i] >= 0:
            members[parent[i]].extend(members[i])
    return [sorted(g) for g in members]


def is_tree_consistent(support: Array, parent: Array) -> bool:
    """True when every selected node's parent is selected too (support is rooted)."""
    support = np.asarray(support, dtype=bool)
    parent = np.asarray(parent)
    if support.shape != parent.shape:
        raise ValueError(f"support has shape {support.shape}, parent {parent.shape}")
    has_parent = parent >= 0
    return bool(np.all(~support[has_parent] | support[parent[has_parent]]))


def tree_closure(support: Array, parent: Array) -> Array:
    """The smallest tree-consistent support containing ``support`` (adds all ancestors)."""
    out = np.asarray(support, dtype=bool).copy()
    parent = np.asarray(parent)
    for i in topological_order(parent)[::-1]:
        if out[i] and parent[i] >= 0:
            out[parent[i]] = True
    return out


def binary_wavelet_tree(n: int) -> Array:
    """Parent array of a 1-D dyadic wavelet tree in heap order (pywt ``wavedec`` layout).

    Index 0 is the scaling coefficient (root), index 1 the coarsest detail (child of 0),
    and detail i ≥ 1 has children 2i and 2i+1. ``n`` must be a power of two.
    """
    if n < 2 or n & (n - 1):
        raise ValueError(f"n must be a power of two >= 2, got {n}")
    parent = np.arange(n) // 2
    parent[0] = -1
    parent[1] = 0
    return parent


def quadtree_wavelet_tree(side: int, coarsest: int = 1) -> Array:
    """Parent array of a 2-D wavelet quadtree in the ``pywt.coeffs_to_array`` layout.

    The ``side × side`` coefficient image (row-major) holds the approximation block of
    size ``coarsest`` in the top-left corner and, for each scale, the H, V and D detail
    bands. A detail coefficient at (r, c) of a band has its four children at
    (2r + {0,1}, 2c + {0,1}) of the same orientation one scale finer; a coarsest detail
    coefficient's parent is the approximation coefficient at the same place, and
    approximation coefficients are roots.
    """
    if side < 2 or side & (side - 1) or coarsest < 1 or coarsest & (coarsest - 1):
        raise ValueError(f"side and coarsest must be powers of two, got {side}, {coarsest}")
    if coarsest >= side:
        raise ValueError(f"coarsest ({coarsest}) must be smaller than side ({side})")
    parent = -np.ones((side, side), dtype=int)
    idx = np.arange(side * side).reshape(side, side)
    s = coarsest
    while s < side:
        for dr, dc in ((0, s), (s, 0), (s, s)):        # H, V, D bands of size s × s
            r, c = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
            if s == coarsest:
                par = idx[r, c]                        # approximation coefficient
            else:
                par = idx[dr // 2 + r // 2, dc // 2 + c // 2]
            parent[dr + r, dc + c] = par
        s *= 2
    return parent.ravel()
