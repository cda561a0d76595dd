"""The graph contract: coupled channel groups (see docs/architecture.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.layout import slices


@dataclass
class Member:
    """One tensor slice cut together with a group.

    ``index[c]`` lists the indices along ``dim`` of parameter/buffer ``param`` that belong
    to channel ``c`` (a conv filter: ``[c]``; a head: ``[h·D .. h·D + D − 1]``; a conv
    channel flattened into a linear layer: ``[c·HW .. c·HW + HW − 1]``; may be empty when
    only some channels of the group reach this tensor, e.g. one side of a concat).
    """

    param: str
    dim: int
    index: list[list[int]]


@dataclass
class Group:
    """Channels that can only be cut together, in every member at once.

    Attributes
    ----------
    id : str
        Stable name, derived from the first module whose output carries the channels.
    size : int
        Number of channels (units that can be removed independently).
    members : list of Member
        Every parameter/buffer slice that belongs to the channels.
    sources : list of (module_name, dim)
        Modules whose output tensor carries exactly these channels, in channel order,
        along ``dim`` (for activation statistics), in execution order.
    prunable : bool
        False when the group cannot lose a channel (a single channel).
    """

    id: str
    size: int
    members: list[Member]
    sources: list[tuple[str, int]] = field(default_factory=list)
    prunable: bool = True

    def channel_norms(self, model: nn.Module, p: float = 2.0) -> torch.Tensor:
        """Per-channel p-norm over all members: ``(Σ_m Σ_{i ∈ index_m[c]} |w_i|^p)^(1/p)``."""
        acc = torch.zeros(self.size, dtype=torch.float64)
        for s in slices(model, self, params_only=False):
            t = s.tensor.detach().to("cpu", torch.float64)
            per_pos = t.movedim(s.dim, 0).reshape(t.shape[s.dim], -1).abs().pow(p).sum(1)
            acc.index_add_(0, s.owner.cpu(), per_pos[s.flat.cpu()])
        return acc.pow(1.0 / p)


@dataclass
class GroupSet:
    """Result of :func:`prunekit.graph.build_groups`.

    Attributes
    ----------
    groups : list of Group
        Prunable coupled groups, in order of first appearance in the forward pass.
    skipped : list of dict
        Barriers and kept dims: ``{"op", "module", "reason", "count"}``. The channels these
        ops touch are not pruned; nothing is guessed.
    output_shapes : list of tuple
        Shapes of the model's output tensors (checked after every cut).
    shape_attrs : dict
        ``{module: {attr: [per-dim list of (group_id, channel) or None]}}`` for layers
        whose size lives only in an attribute (LayerNorm without weights).
    width_ops : list of WidthOp
        Ops of the traced pass whose value depends on how many channels of a group a
        dimension has (means, norms, softmax over channels): where a cut changes values
        by definition (see :mod:`prunekit.graph.width_ops`; used by the value check).
    """

    groups: list[Group]
    skipped: list[dict[str, Any]]
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    shape_attrs: dict[str, dict[str, list[list[tuple[str, int] | None]]]] = field(
        default_factory=dict)
    width_ops: list[Any] = field(default_factory=list, repr=False)

    def by_id(self) -> dict[str, Group]:
        """``{group.id: group}``."""
        return {g.id: g for g in self.groups}

    def unit_offsets(self) -> dict[str, int]:
        """``{group id: offset}``: channel ``c`` of a group is unit ``offset + c`` (the unit
        ids of :attr:`width_ops`), in group order."""
        out, k = {}, 0
        for g in self.groups:
            out[g.id] = k
            k += g.size
        return out

    def __len__(self) -> int:
        return len(self.groups)
