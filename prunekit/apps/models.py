"""Structured sparsity models and their projections (best K-term approximations).

A model says which supports are allowed; its ``support(v, k)`` returns the allowed
support of size k that keeps the most energy Σ_{i∈S} v_i² — the projection used by
model-based CoSaMP (Baraniuk, Cevher, Duarte, Hegde 2010):

- :class:`SparseModel`: any k entries (keep the k largest |v_i|).
- :class:`BlockModel`: k whole groups (keep the k groups of largest ‖v_g‖₂).
- :class:`TreeModel`: a rooted subtree of k nodes. Solved *exactly* by dynamic
  programming over the tree (a tree knapsack): for node v with children c,
  f_v(j) = v_v² + max_{Σ j_c = j−1} Σ_c f_c(j_c), merged child by child, so the total
  cost is O(n·k) array operations instead of the heuristic condensing (CSSA) of the
  original paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prunekit.apps.trees import check_parent, children_lists, topological_order

Array = np.ndarray


def _check_k(k: int, limit: int, unit: str) -> int:
    if not (isinstance(k, int | np.integer) and 0 <= k):
        raise ValueError(f"k must be a non-negative integer ({unit}), got {k!r}")
    return int(min(k, limit))


@dataclass(frozen=True)
class SparseModel:
    """Plain k-sparse vectors; ``k`` counts entries."""

    name: str = "sparse"

    def support(self, v: Array, k: int) -> Array:
        k = _check_k(k, len(v), "entries")
        mask = np.zeros(len(v), dtype=bool)
        if k:
            mask[np.argpartition(-np.abs(v), k - 1)[:k]] = True
        return mask

    def size(self, support: Array) -> int:
        return int(np.count_nonzero(support))


@dataclass(frozen=True)
class BlockModel:
    """Unions of ``k`` groups from a partition; ``k`` counts groups."""

    groups: tuple[tuple[int, ...], ...]
    n_features: int
    name: str = "block"
    _owner: Array = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner = -np.ones(self.n_features, dtype=int)
        for g, idx in enumerate(self.groups):
            if np.any(owner[list(idx)] >= 0):
                raise ValueError("groups must not overlap (BlockModel needs a partition)")
            owner[list(idx)] = g
        if np.any(owner < 0):
            raise ValueError("groups must cover every feature")
        object.__setattr__(self, "_owner", owner)

    @classmethod
    def from_lists(cls, groups: list[list[int]], n_features: int) -> BlockModel:
        return cls(tuple(tuple(int(i) for i in g) for g in groups), n_features)

    def group_energy(self, v: Array) -> Array:
        return np.bincount(self._owner, weights=np.asarray(v) ** 2, minlength=len(self.groups))

    def support(self, v: Array, k: int) -> Array:
        k = _check_k(k, len(self.groups), "groups")
        energy = self.group_energy(v)
        chosen = np.zeros(len(self.groups), dtype=bool)
        if k:
            chosen[np.argpartition(-energy, k - 1)[:k]] = True
        return chosen[self._owner]

    def size(self, support: Array) -> int:
        return int(np.count_nonzero(np.bincount(self._owner, weights=support.astype(float))))


@dataclass(frozen=True)
class TreeModel:
    """Rooted subtrees (of a forest) with ``k`` nodes; exact projection by DP."""

    parent: Array
    name: str = "tree"

    def __post_init__(self) -> None:
        object.__setattr__(self, "parent", check_parent(self.parent))

    def support(self, v: Array, k: int) -> Array:
        k = _check_k(k, len(self.parent), "nodes")
        return tree_projection(np.asarray(v, dtype=float) ** 2, self.parent, k)

    def size(self, support: Array) -> int:
        return int(np.count_nonzero(support))


def _merge(a: Array, b: Array, cap: int) -> tuple[Array, Array]:
    """Max-plus convolution h[s] = max_{i+j=s} a[i] + b[j] for s ≤ cap; returns (h, j*)."""
    length = min(len(a) + len(b) - 1, cap + 1)
    out = np.full(length, -np.inf)
    arg = np.zeros(length, dtype=int)
    if len(a) <= len(b):
        for i in range(min(len(a), length)):
            seg = a[i] + b[: length - i]
            better = seg > out[i:i + len(seg)]
            out[i:i + len(seg)][better] = seg[better]
            arg[i:i + len(seg)][better] = np.flatnonzero(better)
    else:
        for j in range(min(len(b), length)):
            seg = a[: length - j] + b[j]
            better = seg > out[j:j + len(seg)]
            out[j:j + len(seg)][better] = seg[better]
            arg[j:j + len(seg)][better] = j
    return out, arg


def tree_projection(energy: Array, parent: Array, k: int) -> Array:
    """Support of the rooted subtree (forest) with ≤ k nodes maximizing Σ energy.

    Exact dynamic program; returns a boolean mask with exactly min(k, n) nodes.
    """
    parent = np.asarray(parent)
    children = children_lists(parent)
    best: list[Array | None] = [None] * len(parent)
    splits: list[list[Array]] = [[] for _ in range(len(parent))]
    for v in topological_order(parent)[::-1]:
        acc, steps = np.zeros(1), []
        for c in children[v]:
            acc, arg = _merge(acc, best[c], k - 1)
            steps.append(arg)
        best[v] = np.concatenate([[0.0], energy[v] + acc])
        splits[v] = steps
    roots = np.flatnonzero(parent == -1)
    acc, root_steps = np.zeros(1), []
    for r in roots:
        acc, arg = _merge(acc, best[r], k)
        root_steps.append(arg)
    mask = np.zeros(len(parent), dtype=bool)
    _allocate(list(roots), root_steps, min(k, len(acc) - 1), children, splits, mask)
    return mask


def _allocate(nodes: list[int], steps: list[Array], budget: int, children: list[list[int]],
              splits: list[list[Array]], mask: Array) -> None:
    """Trace the DP back: share ``budget`` among ``nodes`` and recurse (iteratively)."""
    stack = [(nodes, steps, budget)]
    while stack:
        nodes, steps, budget = stack.pop()
        for node, arg in zip(nodes[::-1], steps[::-1]):
            take = int(arg[budget])
            budget -= take
            if take:
                mask[node] = True
                stack.append((children[node], splits[node], take - 1))
