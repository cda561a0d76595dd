"""Channel weight vectors of layers and of coupled groups, as :class:`ChannelMoments`.

A layer's channel ``c`` is row ``c`` of its weight, flattened: a conv filter
``W[c] ∈ R^{C_in/g × k × k}`` or a linear neuron's incoming weights ``W[c] ∈ R^{d}``.

A graph group's channel ``c`` is everything the group lasso penalizes for it: the
concatenation, over the group's parameter members ``m``, of the slice
``W_m[index_m[c]]`` taken along the member's dim (producer rows, BatchNorm entries,
consumer input columns). When all channels of a member have the same number of indices
their slices are aligned position by position; otherwise (one side of a concat) each
channel's slice is placed at its own indices, so channels of different branches share
no position — ``G_m[c,c'] = Σ_{i ∈ index[c] ∩ index[c']} ‖W_m[i]‖²``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunekit.diagnose.moments import ChannelMoments


def is_weight_layer(module: nn.Module) -> bool:
    """Conv (not transposed) and Linear layers with a weight: the layers diagnosed."""
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, nn.modules.conv._ConvNd) and not module.transposed


def layer_weight_moments(module: nn.Module) -> ChannelMoments:
    """Moments of the flattened filters (rows of ``weight``) as columns."""
    w = module.weight.detach()
    return ChannelMoments.from_matrix(w.reshape(w.shape[0], -1).T)


def group_weight_moments(model: nn.Module, group: Any) -> ChannelMoments | None:
    """Moments of a group's channel vectors over its parameter members (None: no params)."""
    params = _parameters(model)
    size = int(group.size)
    gram = torch.zeros(size, size, dtype=torch.float64)
    sums = torch.zeros(size, dtype=torch.float64)
    max_abs = torch.zeros(size, dtype=torch.float64)
    top = torch.full((size,), -torch.inf, dtype=torch.float64)
    n = 0
    for m in group.members:
        t = params.get(m.param)
        if t is None or len(m.index) != size:
            continue  # a buffer (BatchNorm running stats): not penalized, not compared
        rows = t.detach().to("cpu", torch.float64).movedim(m.dim, 0)
        rows = rows.reshape(rows.shape[0], -1)
        g, s, mx, mn, length = _member(rows, m.index)
        gram += g
        sums += s
        max_abs = torch.maximum(max_abs, mx)
        top = torch.maximum(top, mn)
        n += length
    if n == 0:
        return None
    return ChannelMoments(n, sums, gram, max_abs, top)


def _member(rows: torch.Tensor, index: list[list[int]]):
    """(G, sums, max|w|, max w, vector length) of one member's channel slices."""
    counts = {len(ix) for ix in index}
    if len(counts) == 1:  # aligned layout: channel c is rows[index[c]] flattened
        k = counts.pop()
        flat = torch.as_tensor([i for ix in index for i in ix], dtype=torch.long)
        x = rows[flat].reshape(len(index), -1) if k else rows.new_zeros(len(index), 0)
        return (x @ x.T, x.sum(1), _amax(x.abs()), _amax(x, -torch.inf), x.shape[1])
    member = torch.zeros(len(index), rows.shape[0], dtype=torch.float64)
    for c, ix in enumerate(index):
        member[c, ix] = 1.0
    sq = rows.pow(2).sum(1)
    gram = (member * sq) @ member.T
    absmax, vmax = rows.abs().amax(1), rows.amax(1)
    mx = torch.stack([absmax[ix].max() if ix else absmax.new_zeros(()) for ix in index])
    top = torch.stack([vmax[ix].max() if ix else vmax.new_zeros(()) for ix in index])
    return gram, member @ rows.sum(1), mx, top, int(rows.numel())


def _amax(x: torch.Tensor, empty: float = 0.0) -> torch.Tensor:
    if x.shape[1] == 0:
        return torch.full((x.shape[0],), empty, dtype=torch.float64)
    return x.amax(1)


def _parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters by name; a masked weight (``parametrize``) also under its plain name."""
    params = dict(model.named_parameters())
    for name, p in list(params.items()):
        head, sep, tail = name.partition("parametrizations.")
        if sep and tail.endswith(".original"):
            params.setdefault(head + tail[: -len(".original")], p)
    return params
