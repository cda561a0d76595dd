"""Channel atoms: a union-find over the smallest units that can be cut.

Every index of every tracked tensor dimension carries an *atom* id. Two atoms are
unioned when cutting one forces cutting the other (``a + b`` couples ``a[c]`` and
``b[c]``; a convolution couples its input channel ``c`` with its weight column ``c``).
Atom ``FIXED`` (0) stands for "cannot be cut": model inputs and outputs, constants,
spatial and batch positions, anything a barrier touched. Unions always keep the smaller
id as the root, so a class that meets ``FIXED`` is fixed for good.
"""

from __future__ import annotations

import numpy as np

FIXED = 0


class Atoms:
    """Vectorized union-find over integer atom ids (``FIXED`` is id 0)."""

    def __init__(self) -> None:
        self._parent = np.zeros(1024, dtype=np.int64)
        self._n = 1  # id 0 is FIXED

    @property
    def size(self) -> int:
        """Number of atom ids handed out so far (``FIXED`` included)."""
        return self._n

    def new(self, count: int) -> np.ndarray:
        """``count`` fresh atoms, each its own class."""
        start, stop = self._n, self._n + count
        if stop > self._parent.size:
            grown = np.zeros(max(stop, 2 * self._parent.size), dtype=np.int64)
            grown[: self._n] = self._parent[: self._n]
            self._parent = grown
        self._parent[start:stop] = np.arange(start, stop)
        self._n = stop
        return np.arange(start, stop, dtype=np.int64)

    def find(self, atoms: np.ndarray) -> np.ndarray:
        """Roots of ``atoms`` (same shape), with path compression."""
        atoms = np.asarray(atoms, dtype=np.int64)
        parent = self._parent
        roots = parent[atoms]
        while True:
            up = parent[roots]
            if np.array_equal(up, roots):
                break
            roots = up
        parent[atoms] = roots
        return roots

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Union ``a[i]`` with ``b[i]`` for every i (arrays broadcast)."""
        a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
        a, b = a.ravel(), b.ravel()
        while True:
            ra, rb = self.find(a), self.find(b)
            differ = ra != rb
            if not differ.any():
                return
            lo = np.minimum(ra[differ], rb[differ])
            hi = np.maximum(ra[differ], rb[differ])
            # duplicate writes keep one of them; the loop repeats until all pairs agree
            self._parent[hi] = lo

    def fix(self, atoms: np.ndarray) -> None:
        """Mark every class in ``atoms`` as not cuttable."""
        atoms = np.asarray(atoms, np.int64).ravel()
        if atoms.size:
            self.union(atoms, np.zeros_like(atoms))

    def union_all(self, atoms: np.ndarray) -> None:
        """Put every atom of ``atoms`` in one class."""
        flat = np.asarray(atoms, np.int64).ravel()
        if flat.size > 1:
            self.union(flat[1:], flat[:1])
