"""Ops that move elements around without computing: view, permute, cat, split, slicing ...

Pure rearrangements are propagated by running the *same op* on a tensor of positions
(index ``i`` of a labeled block holds ``i + 1``) and reading back where each position
went. That one mechanism covers view/reshape/flatten/unflatten, permute/transpose,
squeeze/unsqueeze/expand, repeat, flip/roll, pixel and channel shuffle: a channel
shuffle's split-transpose-merge keeps one atom per channel, a head split keeps a grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from prunekit.graph.atoms import FIXED
from prunekit.graph.labels import Block, Label, collapse, dim_atoms, fix_dims, singles
from prunekit.graph.rules.common import arg, broadcast_union
from prunekit.graph.rules.registry import op_name, rule, short_name

REARRANGE = (
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "swapaxes",
    "swapdims", "movedim", "moveaxis", "squeeze", "unsqueeze", "expand", "expand_as",
    "view_as", "reshape_as", "repeat", "tile", "flip", "fliplr", "flipud", "roll",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "T",
    "mT", "H", "mH", "adjoint", "repeat_interleave", "broadcast_to", "ravel", "atleast_2d",
    "atleast_3d", "atleast_1d", "_unsafe_view", "unfold",
)


def _coords(shape: tuple[int, ...], block: Block) -> torch.Tensor:
    view = [shape[d] if d in block.dims else 1 for d in range(len(shape))]
    pos = torch.arange(1, block.atoms.size + 1, dtype=torch.int64).reshape(view)
    return pos.expand(shape).contiguous()


def _read(o: torch.Tensor, flat_atoms: np.ndarray) -> Block | None:
    """Where the positions went: a block over the output dims they vary along."""
    a = o.detach().contiguous().numpy()
    varying = [e for e in range(a.ndim)
               if a.shape[e] > 1 and not (a == a.take([0], axis=e)).all()]
    if not varying:
        return None
    sub = a[tuple(slice(None) if e in varying else 0 for e in range(a.ndim))]
    atoms = np.where(sub > 0, flat_atoms[np.maximum(sub - 1, 0)], FIXED)
    return Block(tuple(varying), atoms.astype(np.int64))


def _merge(st: Any, labels: list[Label], block: Block | None) -> None:
    if block is None:
        return
    for lab in labels:
        if any(set(b.dims) & set(block.dims) for b in lab.blocks):
            st.uf.fix(block.atoms)  # two labeled dims merged into one: keep both whole
            return
    labels[0].blocks.append(block)


def _run(func: Any, args: tuple, kwargs: dict, shape: tuple[int, ...], block: Block) -> list:
    coords = _coords(shape, block)
    if args:
        mapped = func(coords, *args[1:], **kwargs)
    else:
        mapped = func(**{**kwargs, "input": coords})
    mapped = list(mapped) if isinstance(mapped, (tuple, list)) else [mapped]
    return [_read(m, block.atoms.ravel()) if isinstance(m, torch.Tensor) else None
            for m in mapped]


def _trailing_ones(shape: tuple[int, ...]) -> int:
    n = 0
    for size in reversed(shape):
        if size != 1:
            break
        n += 1
    return n


def _split_off_one(st: Any, in_shape: tuple[int, ...], dim: int,
                   out_shape: tuple[int, ...], block: Block) -> None:
    """A reshape that splits a channel dim into ``(1, n)`` (a single attention head of
    width n) makes the n positions one unit: the head is cut whole or not at all."""
    if dim == 0:  # (C,) -> (1, C, 1, 1) broadcasts a per-channel vector; not a head split
        return
    lead = _trailing_ones(out_shape[:min(block.dims)]) - _trailing_ones(in_shape[:dim])
    if lead > 0:
        st.uf.union_all(block.atoms)


def propagate(st: Any, func: Any, args: tuple, kwargs: dict, out: Any, lab: Label,
              reshape: bool = False) -> None:
    """Run ``func`` on position tensors for every block of ``lab`` (the first argument).

    A grid merged back into fewer dims (a channel shuffle's final view) must stay
    rectangular: it is first collapsed onto its longest axis, so a unit is one slab
    (the same channel of every shuffle group).
    """
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    results = [Label(tuple(o.shape)) if isinstance(o, torch.Tensor) else None for o in outs]
    for block in lab.blocks:
        read = _run(func, args, kwargs, lab.shape, block)
        if len(block.dims) > 1 and any(r is not None and len(r.dims) < len(block.dims)
                                       for r in read):
            sizes = block.atoms.shape
            longest = max(range(len(sizes)), key=lambda i: (sizes[i], i))
            block = collapse(st.uf, block, set(block.dims) - {block.dims[longest]})
            read = _run(func, args, kwargs, lab.shape, block) if block is not None else []
        for res, r in zip(results, read):
            if reshape and r is not None and len(block.dims) == 1:
                _split_off_one(st, lab.shape, block.dims[0], res.shape, r)
            if res is not None:
                _merge(st, [res], r)
    for o, res in zip(outs, results):
        if res is not None:
            st.set(o, res)


def fix_reporting(st: Any, lab: Label, dims: set[int], op: str, reason: str,
                  report: bool = True) -> Label:
    """``fix_dims`` that records a skip entry when prunable channels were affected."""
    if not dims:
        return lab
    if report is False:
        return fix_dims(st.uf, lab, dims)
    touched = [b.atoms for b in lab.blocks if len(b.dims) == 1 and b.dims[0] in dims]
    if touched and np.any(st.uf.find(np.concatenate([t.ravel() for t in touched])) != 0):
        st.skip(op, reason)
    return fix_dims(st.uf, lab, dims)


@rule(*REARRANGE)
def rearrange(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Pure rearrangement: propagate positions."""
    x = args[0] if args else kwargs.get("input")
    lab = st.label(x)
    name = op_name(func)
    if name == "torch.Tensor.unfold" and lab.blocks:  # sliding windows: keep that dim whole
        lab = fix_reporting(st, lab, {arg(args, kwargs, 1, "dimension") % x.ndim}, name,
                            "sliding windows over a channel dim")
    reshape = name.rsplit(".", 1)[-1] in ("view", "reshape", "unflatten", "_unsafe_view")
    propagate(st, func, args, kwargs, out, lab, reshape)


def _index_dims(shape: tuple[int, ...], idx: Any) -> set[int]:
    """Input dims that an index expression selects from non-trivially."""
    items = idx if isinstance(idx, tuple) else (idx,)

    def width(i: Any) -> int:
        if i is None or i is Ellipsis:
            return 0
        if isinstance(i, torch.Tensor) and i.dtype == torch.bool:
            return i.ndim
        return 1

    consumed = sum(width(i) for i in items)
    d, bad = 0, set()
    for i in items:
        if i is None:
            continue
        if i is Ellipsis:
            d += len(shape) - consumed
            continue
        w = width(i)
        if isinstance(i, slice):
            if i.indices(shape[d]) != (0, shape[d], 1):
                bad.add(d)
        else:
            bad.update(range(d, d + w))
        d += w
    return bad


@rule("__getitem__")
def getitem(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Indexing: dims indexed by constants keep their channels; the rest rearranges."""
    x, idx = args[0], args[1]
    lab = st.label(x)
    if lab.blocks:
        lab = fix_reporting(st, lab, _index_dims(tuple(x.shape), idx), "__getitem__",
                            "channels indexed by constant positions", not st.is_param(x))
    propagate(st, func, args, kwargs, out, lab)


@rule("narrow", "select", "index_select", "take_along_dim", "gather", "diagonal")
def narrow(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Selecting along one dim by constants: that dim keeps its channels."""
    x = args[0]
    dim = arg(args, kwargs, 1, "dim") % x.ndim
    name = short_name(op_name(func))
    trivial = name == "narrow" and arg(args, kwargs, 2, "start") == 0 and \
        arg(args, kwargs, 3, "length") == x.shape[dim]
    lab = st.label(x)
    if name in ("gather", "take_along_dim", "diagonal"):
        st.barrier(name, args, kwargs, "index-dependent gather")
        return
    if not trivial:
        lab = fix_reporting(st, lab, {dim}, name, "channels selected by constant positions",
                            not st.is_param(x))
    propagate(st, func, args, kwargs, out, lab)


def _split_dim(func: Any, args: tuple, kwargs: dict) -> tuple[str, int]:
    name = short_name(op_name(func))
    pos = 1 if name == "unbind" else 2
    return name, arg(args, kwargs, pos, "dim", 0)


@rule("split", "chunk", "unbind", "tensor_split", "split_with_sizes", "hsplit", "vsplit")
def split(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Equal parts of a channel dim are paired (part k index i ~ part 0 index i), so
    every part keeps the same width; unequal or literal-sized parts keep the dim whole."""
    x = args[0]
    name, dim = _split_dim(func, args, kwargs)
    dim %= x.ndim
    outs = list(out)
    lab = st.label(x)
    block = lab.block_of(dim)
    sizes = [1 if name == "unbind" else o.shape[dim] for o in outs]
    sections = arg(args, kwargs, 1, "split_size_or_sections")
    equal = (name == "chunk" or (name == "split" and isinstance(sections, int))
             or (name == "unbind" and block is not None and len(block.dims) > 1))
    if block is not None and not (equal and len(set(sizes)) == 1):
        lab = fix_reporting(st, lab, {dim}, name, "split sizes are fixed numbers")
        block = lab.block_of(dim)
    blocks = [b for b in lab.blocks if b is not block]
    if block is not None:
        axis = block.dims.index(dim)
        moved = np.moveaxis(block.atoms, axis, 0)
        parts = moved.reshape(len(outs), sizes[0], *moved.shape[1:])
        st.uf.union(parts[1:], parts[:1])
        part = np.moveaxis(parts[0], 0, axis)
        if name == "unbind":
            part = np.take(part, 0, axis=axis)
            blocks.append(Block(tuple(d for d in block.dims if d != dim), part))
        else:
            blocks.append(Block(block.dims, part))
    for o in outs:
        if name == "unbind":
            shifted = [Block(tuple(d - (d > dim) for d in b.dims), b.atoms) for b in blocks]
            st.set(o, Label(tuple(o.shape), shifted))
        else:
            st.set(o, Label(tuple(o.shape), list(blocks)))


@rule("cat", "concat", "concatenate")
def cat(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Concatenation: the cat dim is the inputs' atoms end to end; other dims coupled."""
    seq = arg(args, kwargs, 0, "tensors")
    dim = arg(args, kwargs, 1, "dim", 0) % out.ndim
    ts = [t for t in seq if not (t.ndim == 1 and t.numel() == 0 and out.ndim != 1)]
    labs = [st.label(t) for t in ts]
    along = np.concatenate([dim_atoms(st.uf, lab, dim) for lab in labs])
    rest = [Label(lab.shape, [b for b in singles(st.uf, lab).blocks if b.dims != (dim,)])
            for lab in labs]
    shape = list(out.shape)
    shape[dim] = 1  # the other dims couple like a broadcast of equal shapes
    pseudo = [Label(tuple(shape), lab.blocks) for lab in rest]
    merged = broadcast_union(st, pseudo, tuple(shape))
    blocks = [Block(b.dims, b.atoms) for b in merged.blocks if dim not in b.dims]
    if np.any(along != FIXED):
        blocks.append(Block((dim,), along))
    st.set(out, Label(tuple(out.shape), blocks))


@rule("stack", "hstack", "vstack", "dstack")
def stack(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Stacking couples the inputs elementwise; the new dim carries no channel."""
    seq = arg(args, kwargs, 0, "tensors")
    name = short_name(op_name(func))
    if name != "stack":
        st.barrier(name, args, kwargs, "no propagation rule for this op")
        return
    dim = arg(args, kwargs, 1, "dim", 0) % out.ndim
    labs = [st.label(t) for t in seq]
    merged = broadcast_union(st, labs, tuple(seq[0].shape))
    blocks = [Block(tuple(d + (d >= dim) for d in b.dims), b.atoms) for b in merged.blocks]
    st.set(out, Label(tuple(out.shape), blocks))


SAME_DIMS = (
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
    "max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices", "lp_pool1d", "lp_pool2d", "lp_pool3d",
    "fractional_max_pool2d", "fractional_max_pool3d", "pad", "interpolate", "upsample",
    "upsample_nearest", "upsample_bilinear", "upsample_nearest1d", "upsample_nearest2d",
    "upsample_nearest3d", "upsample_bilinear2d", "upsample_bicubic2d", "upsample_linear1d",
    "upsample_trilinear3d", "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa",
    "local_response_norm", "grid_sample", "_adaptive_avg_pool2d", "max_unpool2d",
    "constant_pad_nd", "reflection_pad2d", "replication_pad2d",
)


@rule(*SAME_DIMS)
def same_dims(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Pooling, padding, resizing: dims that keep their size keep their atoms."""
    x = args[0] if args else kwargs.get("input")
    lab = st.label(x)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    name = short_name(op_name(func))
    for o in outs:
        if not isinstance(o, torch.Tensor):
            continue
        if o.ndim != x.ndim:
            st.barrier(name, args, kwargs, "rank changed")
            return
        changed = {d for d in range(x.ndim) if o.shape[d] != x.shape[d]}
        kept = fix_reporting(st, lab, changed, name, "a channel dim changes size")
        st.set(o, Label(tuple(o.shape), list(kept.blocks)))
