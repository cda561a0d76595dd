"""Tree-structured (hierarchical) groups: validation and the leaves-to-root order.

Groups form a tree when any two of them are either disjoint or nested. For such groups
the prox of ``Σ_g w_g ‖x_g‖₂`` is exact when group soft-thresholds are composed from the
leaves to the root (Jenatton, Mairal, Obozinski & Bach, JMLR 2011). Groups of equal
*height* (0 for a leaf, 1 + the highest child otherwise) are pairwise disjoint, so each
height is one vectorized group soft-threshold.
"""

from __future__ import annotations

import numpy as np

from .groups import Groups

__all__ = ["tree_levels", "tree_parents"]


def tree_parents(groups: Groups) -> np.ndarray:
    """Parent of each group (smallest strictly larger group containing it), -1 for roots.

    Raises
    ------
    ValueError
        If two groups overlap without one containing the other.
    """
    if "parents" in groups._cache:
        return groups._cache["parents"]
    order = np.lexsort((np.arange(groups.n_groups), groups.sizes))  # small first, stable
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    sets = [frozenset(a.tolist()) for a in groups]
    chains: dict[int, list[int]] = {}
    for g in order.tolist():
        for j in groups[g].tolist():
            chains.setdefault(j, []).append(g)
    parents = np.full(groups.n_groups, -1, dtype=np.int64)
    for chain in chains.values():
        for child, parent in zip(chain[:-1], chain[1:]):
            if not sets[child] <= sets[parent]:
                raise ValueError(f"groups: not tree-structured, groups {child} and {parent} "
                                 "overlap without one containing the other")
            if parents[child] < 0 or rank[parent] < rank[parents[child]]:
                parents[child] = parent
    groups._cache["parents"] = parents
    return parents


def tree_levels(groups: Groups) -> list[Groups]:
    """Disjoint sub-collections of ``groups`` in leaves-to-root order."""
    if "levels" in groups._cache:
        return groups._cache["levels"]
    parents = tree_parents(groups)
    height = np.zeros(groups.n_groups, dtype=np.int64)
    for g in np.lexsort((np.arange(groups.n_groups), groups.sizes)).tolist():
        p = parents[g]
        if p >= 0:
            height[p] = max(height[p], height[g] + 1)
    levels = [groups.subset(np.flatnonzero(height == h)) for h in range(height.max() + 1)]
    groups._cache["levels"] = levels
    return levels
