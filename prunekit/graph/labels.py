"""Which atoms a tensor carries along which dimensions.

A :class:`Label` is a list of :class:`Block` s. A block covers one tensor dimension (the
common case: ``atoms[i]`` is the atom of index ``i``) or several (a *grid*: a channel
dimension that a reshape split, e.g. ``E -> (heads, head_dim)`` or a channel shuffle's
``C -> (g, C/g)``). Dimensions in no block carry no prunable channel (batch, spatial,
anything fixed). Grids stay grids through pure rearrangements, so that a shuffle that
splits, transposes and merges back keeps per-channel atoms; an op that needs a single
dimension *collapses* the other axes of the grid (unions along them), which is exactly
the constraint "prune whole heads" or "prune whole slabs".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prunekit.graph.atoms import FIXED, Atoms


@dataclass
class Block:
    """Atoms over tensor dims ``dims`` (ascending); ``atoms.shape`` = sizes of those dims."""

    dims: tuple[int, ...]
    atoms: np.ndarray


@dataclass
class Label:
    """Channel atoms of one tensor of shape ``shape``."""

    shape: tuple[int, ...]
    blocks: list[Block] = field(default_factory=list)

    def block_of(self, dim: int) -> Block | None:
        """The block covering ``dim`` (negative dims allowed), or None."""
        dim = dim % len(self.shape) if self.shape else dim
        for block in self.blocks:
            if dim in block.dims:
                return block
        return None

    def is_fixed(self) -> bool:
        """True when no dimension carries atoms."""
        return not self.blocks


def fixed(shape: tuple[int, ...]) -> Label:
    """A label with no prunable dimension."""
    return Label(tuple(shape))


def fresh(uf: Atoms, shape: tuple[int, ...]) -> Label:
    """New atoms on every dimension of size > 1 (how parameters enter the trace)."""
    blocks = [Block((d,), uf.new(n)) for d, n in enumerate(shape) if n > 1]
    return Label(tuple(shape), blocks)


def all_atoms(label: Label) -> np.ndarray:
    """Every atom the label carries, flattened."""
    if not label.blocks:
        return np.zeros(0, np.int64)
    return np.concatenate([b.atoms.ravel() for b in label.blocks])


def collapse(uf: Atoms, block: Block, dims: set[int]) -> Block | None:
    """Union ``block`` along ``dims``; the block over the remaining dims (None if none).

    With no remaining dim the atoms are fixed instead (nothing left to cut them along).
    """
    axes = [i for i, d in enumerate(block.dims) if d in dims]
    if not axes:
        return block
    keep = [i for i, d in enumerate(block.dims) if d not in dims]
    if not keep:
        uf.fix(block.atoms)
        return None
    moved = np.moveaxis(block.atoms, axes, list(range(len(block.dims) - len(axes),
                                                       len(block.dims))))
    rows = moved.reshape(*moved.shape[: len(keep)], -1)
    flat = rows.reshape(-1, rows.shape[-1])
    if flat.shape[1] > 1:
        uf.union(flat[:, 1:], flat[:, :1])
    return Block(tuple(block.dims[i] for i in keep), np.ascontiguousarray(rows[..., 0]))


def fix_dims(uf: Atoms, label: Label, dims: set[int] | list[int]) -> Label:
    """Make ``dims`` carry no channel: collapse grids along them, fix single dims."""
    nd = len(label.shape)
    dims = {d % nd for d in dims} if nd else set()
    blocks = []
    for block in label.blocks:
        out = collapse(uf, block, dims)
        if out is not None:
            blocks.append(out)
    return Label(label.shape, blocks)


def singles(uf: Atoms, label: Label, keep: set[int] | None = None) -> Label:
    """Collapse every grid to one dimension: the lowest dim, or the lowest one in ``keep``."""
    blocks = []
    for block in label.blocks:
        if len(block.dims) == 1:
            blocks.append(block)
            continue
        wanted = [d for d in block.dims if keep is None or d in keep]
        target = min(wanted) if wanted else min(block.dims)
        out = collapse(uf, block, set(block.dims) - {target})
        if out is not None:
            blocks.append(out)
    return Label(label.shape, blocks)


def dim_atoms(uf: Atoms, label: Label, dim: int) -> np.ndarray:
    """Atoms along ``dim`` as a 1-D array (``FIXED`` where untracked).

    A grid covering ``dim`` is collapsed onto ``dim`` first (the caller needs one
    dimension), so call this before reading other dims of the same label.
    """
    nd = len(label.shape)
    dim = dim % nd
    block = label.block_of(dim)
    if block is None:
        return np.full(label.shape[dim], FIXED, np.int64)
    if len(block.dims) > 1:
        label.blocks.remove(block)
        block = collapse(uf, block, set(block.dims) - {dim})
        label.blocks.append(block)
    return block.atoms


def from_dims(shape: tuple[int, ...], per_dim: dict[int, np.ndarray]) -> Label:
    """A label from single-dim atom arrays; all-``FIXED`` arrays are dropped."""
    blocks = []
    for d, atoms in sorted(per_dim.items()):
        if atoms is not None and np.any(atoms != FIXED):
            blocks.append(Block((d,), np.asarray(atoms, np.int64)))
    return Label(tuple(shape), blocks)
