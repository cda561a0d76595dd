"""Ops whose value depends on how many channels a dimension has.

Zero-group invariance (a channel whose weights are all zero changes nothing, so removing
it changes nothing) holds for sums, products with weights, elementwise ops and
per-channel norms. It does not hold where an op *counts* the channels it reduces over:
a mean or variance over a cut dimension, LayerNorm / RMSNorm / GroupNorm(1, C) over it, a
softmax along it, the ``1/√d`` scale of attention over a cut head width. There the cut
model's values differ from the zeroed original *by definition of the cut*, not because
anything went wrong.

The trace records every such op (its call index in the forward pass, the tensor dims it
reduces and the channel atoms along them); :func:`emulate` computes what the op gives
on the kept channels only, from the zeroed original's inputs. The value check after a
cut (:mod:`prunekit.surgery.value_check`) runs the zeroed original with these ops
emulated, so it compares the cut model against exactly what the cut should compute and
still catches a layout the cut has reinterpreted (a width baked into a ``view``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prunekit.graph.rules.common import arg


class EmulationError(RuntimeError):
    """The kept-channel version of a recorded op cannot be computed (the value check
    then cannot verify the cut; the caller leaves the groups involved whole)."""


@dataclass
class WidthOp:
    """One recorded op whose value depends on the width of ``dims``.

    ``blocks`` are ``(tensor dims, unit ids)`` over the op's first tensor input (``kind``
    ``"mha"``: over the ``(heads, head_dim)`` query rows of the packed projection); a unit
    id is ``offset of the group + channel`` (see :meth:`GroupSet.unit_offsets`) or -1.
    """

    index: int
    op: str
    kind: str
    module: str
    dims: tuple[int, ...]
    shape: tuple[int, ...]
    blocks: list[tuple[tuple[int, ...], np.ndarray]]

    def keep_mask(self, gone: np.ndarray) -> torch.Tensor | None:
        """Bool mask broadcastable to the input (True = kept); None when nothing that
        the op reduces over is removed."""
        mask = torch.ones((1,) * len(self.shape), dtype=torch.bool)
        touched = False
        for dims, units in self.blocks:
            lost = np.zeros(units.shape, bool)
            live = units >= 0
            lost[live] = gone[units[live]]
            if lost.any():
                touched = True
                shape = [self.shape[d] if d in dims else 1 for d in range(len(self.shape))]
                mask = mask & torch.from_numpy(~lost).reshape(shape)
        return mask if touched else None


def _factors(mask: torch.Tensor, dims: tuple[int, ...], shape: tuple[int, ...]
             ) -> dict[int, torch.Tensor]:
    """Kept indices per reduced dim, when the mask is one product over them that does not
    vary along the other dims (else EmulationError). Rows that lose every channel (a
    removed head, whose norm runs over its own width) do not count: they are gone."""
    full = mask.expand(shape).to(torch.uint8)
    others = tuple(d for d in range(len(shape)) if d not in dims)
    if others:
        live = full.amax(dim=dims, keepdim=True).bool()
        high = full.amax(dim=others, keepdim=True)
        low = torch.where(live, full, high).amin(dim=others, keepdim=True)
        if not torch.equal(low, high):
            raise EmulationError("the kept channels differ between rows")
        full = high
    out, prod = {}, torch.ones_like(full)
    for d in dims:
        rest = tuple(e for e in dims if e != d)
        vec = full.amax(dim=rest, keepdim=True) if rest else full
        prod = prod * vec
        if not bool(vec.all()):
            out[d] = vec.flatten().nonzero().flatten()
    if not torch.equal(prod, full):
        raise EmulationError("the kept channels are not a product over the reduced dims")
    return out


def _compact(x: torch.Tensor, keep: dict[int, torch.Tensor]) -> torch.Tensor:
    for d, idx in keep.items():
        x = x.index_select(d, idx.to(x.device))
    return x


def _scatter(small: torch.Tensor, shape: tuple[int, ...], keep: dict[int, torch.Tensor]
             ) -> torch.Tensor:
    """``small`` placed at the kept positions of a zero tensor of ``shape``."""
    out = small
    for d, idx in keep.items():
        full = list(out.shape)
        full[d] = shape[d]
        grown = out.new_zeros(full)
        out = grown.index_copy(d, idx.to(out.device), out)
    return out


def _reduce(op: WidthOp, func: Any, args: tuple, kwargs: dict, mask: torch.Tensor) -> Any:
    keep = _factors(mask, op.dims, tuple(args[0].shape))
    return func(_compact(args[0], keep), *args[1:], **kwargs)


def _pointwise(op: WidthOp, func: Any, args: tuple, kwargs: dict, mask: torch.Tensor) -> Any:
    keep = _factors(mask, op.dims, tuple(args[0].shape))
    out = func(_compact(args[0], keep), *args[1:], **kwargs)
    shape = tuple(args[0].shape)
    if isinstance(out, tuple):  # cummax / cummin: (values, indices)
        return type(out)([_scatter(o, shape, keep) * mask for o in out])
    return _scatter(out, shape, keep) * mask


def _norm(op: WidthOp, func: Any, args: tuple, kwargs: dict, mask: torch.Tensor) -> Any:
    """layer_norm / rms_norm over the last ``k`` dims, on the kept channels."""
    x = args[0]
    keep = _factors(mask, op.dims, tuple(x.shape))
    k = len(op.dims)
    wkeep = {d - (x.ndim - k): idx for d, idx in keep.items()}
    rms = op.kind == "rms_norm"
    weight = arg(args, kwargs, 2, "weight")
    bias = None if rms else arg(args, kwargs, 3, "bias")
    eps = arg(args, kwargs, 3 if rms else 4, "eps", None if rms else 1e-5)
    xc = _compact(x, keep)
    shape = tuple(xc.shape[x.ndim - k:])
    w = None if weight is None else _compact(weight, wkeep)
    if rms:
        out = F.rms_norm(xc, shape, w, eps)
    else:
        b = None if bias is None else _compact(bias, wkeep)
        out = F.layer_norm(xc, shape, w, b, eps)
    return _scatter(out, tuple(x.shape), keep) * mask


def _group_norm1(op: WidthOp, func: Any, args: tuple, kwargs: dict, mask: torch.Tensor
                 ) -> Any:
    """GroupNorm with one group normalizes over every channel: on the kept ones."""
    x = args[0]
    keep = _factors(mask, op.dims, tuple(x.shape))
    ch = {1: keep[1]} if 1 in keep else {}
    weight, bias = arg(args, kwargs, 2, "weight"), arg(args, kwargs, 3, "bias")
    eps = arg(args, kwargs, 4, "eps", 1e-5)
    w = None if weight is None else _compact(weight, {0: ch[1]} if ch else {})
    b = None if bias is None else _compact(bias, {0: ch[1]} if ch else {})
    out = F.group_norm(_compact(x, keep), 1, w, b, eps)
    return _scatter(out, tuple(x.shape), keep) * mask


def _sdpa(op: WidthOp, func: Any, args: tuple, kwargs: dict, mask: torch.Tensor) -> Any:
    """Attention's default scale is ``1/√d`` of the query width: scale each row's query
    by ``√(d / kept)`` (zero query/key columns leave the dot products as they are)."""
    if kwargs.get("scale") is not None or len(args) > 6:
        return func(*args, **kwargs)
    q = args[0]
    d = q.shape[-1]
    kept = mask.expand(q.shape).sum(-1, keepdim=True).to(q.dtype)
    factor = torch.where(kept > 0, (d / kept.clamp_min(1)).sqrt(), torch.zeros_like(kept))
    return func(q * factor, *args[1:], **kwargs)


def _mha(op: WidthOp, func: Any, args: tuple, kwargs: dict, mask: torch.Tensor) -> Any:
    """``multi_head_attention_forward`` after a head-dim cut: the scale follows the kept
    head width; scale the packed query rows (and bias) by ``√(D / kept)``."""
    heads, d = op.shape
    kept = int(mask.expand(op.shape).sum(1).max())
    if kept == 0:
        return func(*args, **kwargs)
    factor = math.sqrt(d / kept)
    args = list(args)
    for pos, name in ((5, "in_proj_weight"), (6, "in_proj_bias")):
        t = arg(tuple(args), kwargs, pos, name)
        if t is None:
            continue
        t = t.clone()
        t[: heads * d] *= factor
        if len(args) > pos:
            args[pos] = t
        else:
            kwargs = {**kwargs, name: t}
    return func(*args, **kwargs)


EMULATE: dict[str, Callable[..., Any]] = {
    "reduce": _reduce, "pointwise": _pointwise, "layer_norm": _norm, "rms_norm": _norm,
    "group_norm1": _group_norm1, "sdpa": _sdpa, "mha": _mha,
}


def emulate(op: WidthOp, func: Any, args: tuple, kwargs: dict, gone: np.ndarray) -> Any:
    """``func(*args, **kwargs)`` as it acts on the kept channels only."""
    mask = op.keep_mask(gone)
    if mask is None:
        return func(*args, **kwargs)
    return EMULATE[op.kind](op, func, args, kwargs, mask)
