"""Helpers shared by the propagation rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from prunekit.graph.labels import Block, Label, dim_atoms, fix_dims, singles


def arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    """Positional-or-keyword argument ``name`` at position ``index``."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def shift(label: Label, offset: int, shape: tuple[int, ...]) -> Label:
    """``label`` with every dim moved by ``offset`` onto a tensor of ``shape``."""
    return Label(tuple(shape), [Block(tuple(d + offset for d in b.dims), b.atoms)
                                for b in label.blocks])


def broadcast_union(st: Any, labels: list[Label], out_shape: tuple[int, ...]) -> Label:
    """Couple operands of a broadcasting elementwise op; the output label.

    Index ``i`` of output dim ``d`` couples index ``i`` of every operand that is not
    broadcast along ``d``. An operand that is untracked along such a dim (a constant
    of full size) fixes the others' atoms there: it would not be cut with them.
    """
    nd = len(out_shape)
    ops = [(lab, nd - len(lab.shape)) for lab in labels]
    labeled = [(lab, off) for lab, off in ops if lab.blocks]
    if not labeled:
        return Label(tuple(out_shape))

    def full(lab: Label, off: int, d: int) -> bool:
        k = d - off
        return k >= 0 and lab.shape[k] == out_shape[d] and out_shape[d] > 1

    if len(labeled) == 1:
        lab, off = labeled[0]
        others = [(o, oo) for o, oo in ops if o is not lab]
        dims = {d + off for b in lab.blocks for d in b.dims}
        if all(not full(o, oo, d) for o, oo in others for d in dims):
            return shift(lab, off, out_shape)
    fixed_ops = []
    for lab, off in ops:
        bad = {d - off for d in range(nd) if full(lab, off, d) and any(
            full(o, oo, d) and o.block_of(d - oo) is None for o, oo in ops if o is not lab)}
        lab = fix_dims(st.uf, lab, bad) if bad and lab.blocks else lab
        fixed_ops.append((singles(st.uf, lab), off))
    blocks = []
    for d in range(nd):
        arrays = [dim_atoms(st.uf, lab, d - off) for lab, off in fixed_ops
                  if full(lab, off, d) and lab.block_of(d - off) is not None]
        if not arrays:
            continue
        for other in arrays[1:]:
            st.uf.union(arrays[0], other)
        blocks.append(Block((d,), arrays[0]))
    return Label(tuple(out_shape), blocks)


def tensors(*items: Any) -> list[torch.Tensor]:
    """The tensors among ``items`` (non-tensors dropped)."""
    return [t for t in items if isinstance(t, torch.Tensor)]


def couple(st: Any, a: np.ndarray, b: np.ndarray) -> None:
    """Union two equal-length atom arrays."""
    st.uf.union(a, b)
