"""Normalized groups of features: one flat index array, CSR-style pointers, weights.

Every penalty and solver in :mod:`prunekit.sparsity` works on this one form, whether a
user gave lists of feature indices or the graph layer produced coupled channels. Group
``g`` holds ``indices[ptr[g]:ptr[g + 1]]`` and carries the weight ``weights[g]`` (the
``w_g`` in ``Ω(w) = Σ_g w_g ‖x_g‖₂``). Features that belong to no group are unpenalized.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["Groups", "as_groups"]


@dataclass(frozen=True, eq=False)
class Groups:
    """Groups of feature indices in CSR form.

    Attributes
    ----------
    indices : ndarray of int64
        Concatenated feature indices of all groups.
    ptr : ndarray of int64, shape (n_groups + 1,)
        Group ``g`` is ``indices[ptr[g]:ptr[g + 1]]``.
    weights : ndarray of float64, shape (n_groups,)
        Non-negative per-group weights ``w_g``.
    n_features : int
        Length of the vectors the groups index into.
    """

    indices: np.ndarray
    ptr: np.ndarray
    weights: np.ndarray
    n_features: int
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_lists(
        cls,
        groups: Iterable[Iterable[int]],
        n_features: int | None = None,
        weights: Any = None,
        partition: bool = True,
    ) -> Groups:
        """Validate and normalize a list of index lists.

        Parameters
        ----------
        groups : iterable of iterables of int
            Feature indices of each group; each group non-empty, no repeated index.
        n_features : int, optional
            Number of features; inferred as ``max index + 1`` when omitted.
        weights : None, "sqrt", or array-like of shape (n_groups,)
            ``None`` gives weight 1 per group (the seed formula); ``"sqrt"`` gives
            ``sqrt(|g|)`` (Yuan & Lin); otherwise finite non-negative numbers.
        partition : bool
            If True, groups must be pairwise disjoint (overlap raises ValueError).

        Raises
        ------
        ValueError
            Naming the offending group: empty, non-integer, out of range, repeated
            index, overlapping (when ``partition``), or bad weights.
        """
        lists = _to_index_arrays(groups)
        if not lists:
            raise ValueError("groups: at least one group is required, got none")
        n_features = _check_n_features(lists, n_features)
        indices = np.concatenate(lists).astype(np.int64)
        ptr = np.zeros(len(lists) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(a) for a in lists])
        if partition and len(np.unique(indices)) != len(indices):
            raise ValueError(f"groups: overlapping groups where a partition is required "
                             f"({_describe_overlap(lists)})")
        sizes = np.diff(ptr)
        return cls(indices, ptr, _make_weights(weights, sizes), int(n_features))

    @classmethod
    def singletons(cls, n_features: int, weights: Any = None) -> Groups:
        """One group per feature (the Lasso as a group lasso)."""
        return cls.from_lists([[j] for j in range(n_features)], n_features, weights)

    @classmethod
    def contiguous(cls, n_features: int, size: int, weights: Any = None) -> Groups:
        """Consecutive blocks of ``size`` features (the last block may be shorter)."""
        if size < 1:
            raise ValueError(f"size: must be >= 1, got {size}")
        starts = range(0, n_features, size)
        return cls.from_lists([list(range(s, min(s + size, n_features))) for s in starts],
                              n_features, weights)

    # ------------------------------------------------------------------ views
    @property
    def n_groups(self) -> int:
        return len(self.ptr) - 1

    def __len__(self) -> int:
        return self.n_groups

    def __getitem__(self, g: int) -> np.ndarray:
        return self.indices[self.ptr[g]:self.ptr[g + 1]]

    def __iter__(self):
        return (self[g] for g in range(self.n_groups))

    def to_lists(self) -> list[list[int]]:
        return [a.tolist() for a in self]

    @cached_property
    def sizes(self) -> np.ndarray:
        return np.diff(self.ptr)

    @cached_property
    def group_ids(self) -> np.ndarray:
        """Group id of every entry of ``indices`` (for segment sums)."""
        return np.repeat(np.arange(self.n_groups, dtype=np.int64), self.sizes)

    @cached_property
    def is_partition(self) -> bool:
        """True when the groups are pairwise disjoint."""
        return len(np.unique(self.indices)) == len(self.indices)

    @cached_property
    def unpenalized(self) -> np.ndarray:
        """Features that belong to no group (or only to groups of weight 0)."""
        covered = np.zeros(self.n_features, dtype=bool)
        covered[self.indices[self.weights[self.group_ids] > 0]] = True
        return np.flatnonzero(~covered)

    @cached_property
    def counts(self) -> np.ndarray:
        """How many groups contain each feature."""
        return np.bincount(self.indices, minlength=self.n_features)

    def with_weights(self, weights: Any) -> Groups:
        """Same groups, new weights (validated)."""
        return Groups(self.indices, self.ptr, _make_weights(weights, self.sizes),
                      self.n_features)

    def subset(self, which: np.ndarray) -> Groups:
        """The groups listed in ``which`` (in that order)."""
        return Groups.from_lists([self[g] for g in which], self.n_features,
                                 self.weights[which], partition=False)

    def torch_index(self, device: Any) -> tuple[Any, Any]:
        """``(indices, group_ids)`` as torch int64 tensors on ``device`` (cached)."""
        key = ("torch", str(device))
        if key not in self._cache:
            import torch

            self._cache[key] = (torch.as_tensor(self.indices, device=device),
                                torch.as_tensor(self.group_ids, device=device))
        return self._cache[key]


def as_groups(groups: Any, n_features: int | None = None, weights: Any = None,
              partition: bool = True) -> Groups:
    """Return ``groups`` as :class:`Groups` (validating lists; checking an instance).

    An existing :class:`Groups` keeps its weights unless ``weights`` is given.
    """
    if isinstance(groups, Groups):
        if n_features is not None and groups.n_features != n_features:
            raise ValueError(f"groups: built for {groups.n_features} features, "
                             f"data has {n_features}")
        if partition and not groups.is_partition:
            raise ValueError("groups: overlapping groups where a partition is required")
        return groups if weights is None else groups.with_weights(weights)
    return Groups.from_lists(groups, n_features, weights, partition)


# ---------------------------------------------------------------------- validation
def _to_index_arrays(groups: Any) -> list[np.ndarray]:
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
        raise ValueError(f"groups: expected a list of index lists, got {type(groups).__name__}")
    out = []
    for g, members in enumerate(groups):
        if isinstance(members, (str, bytes)) or not isinstance(members, Iterable):
            raise ValueError(f"groups[{g}]: expected a list of indices, got "
                             f"{type(members).__name__}")
        if not isinstance(members, np.ndarray):
            members = list(members)
            flag = next((m for m in members if isinstance(m, bool | np.bool_)), None)
            if flag is not None:
                raise ValueError(f"groups[{g}]: non-integer index {flag!r}")
        arr = np.asarray(members)
        if arr.size == 0:
            raise ValueError(f"groups[{g}]: empty group")
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            bad = next((m for m in arr.ravel().tolist() if not _is_int(m)), arr)
            raise ValueError(f"groups[{g}]: non-integer index {bad!r}")
        arr = arr.astype(np.int64, copy=False)
        if arr.size > 1 and len(np.unique(arr)) != arr.size:
            raise ValueError(f"groups[{g}]: repeated index in a group")
        out.append(arr)
    return out


def _is_int(m: Any) -> bool:
    if isinstance(m, bool | np.bool_):
        return False
    if isinstance(m, numbers.Integral):
        return True
    return hasattr(m, "ndim") and m.ndim == 0 and np.issubdtype(np.asarray(m).dtype, np.integer)


def _check_n_features(lists: Sequence[np.ndarray], n_features: int | None) -> int:
    lo = min(int(a.min()) for a in lists)
    hi = max(int(a.max()) for a in lists)
    if lo < 0:
        g = next(i for i, a in enumerate(lists) if a.min() < 0)
        raise ValueError(f"groups[{g}]: index out of range (negative index {lo})")
    if n_features is None:
        return hi + 1
    if not _is_int(n_features) or n_features < 1:
        raise ValueError(f"n_features: must be a positive integer, got {n_features!r}")
    if hi >= n_features:
        g = next(i for i, a in enumerate(lists) if a.max() >= n_features)
        raise ValueError(f"groups[{g}]: index {hi} out of range for n_features={n_features}")
    return int(n_features)


def _describe_overlap(lists: Sequence[np.ndarray]) -> str:
    seen: dict[int, int] = {}
    for g, arr in enumerate(lists):
        for j in arr.tolist():
            if j in seen:
                return f"feature {j} is in groups {seen[j]} and {g}"
            seen[j] = g
    return "repeated feature"


def _make_weights(weights: Any, sizes: np.ndarray) -> np.ndarray:
    if weights is None:
        return np.ones(len(sizes))
    if isinstance(weights, str):
        if weights != "sqrt":
            raise ValueError(f"weights: expected None, 'sqrt' or an array, got {weights!r}")
        return np.sqrt(sizes.astype(float))
    w = np.asarray(weights, dtype=float).reshape(-1)
    if w.shape != (len(sizes),):
        raise ValueError(f"weights: expected {len(sizes)} values (one per group), got {w.size}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights: must be finite and non-negative")
    return w.copy()
