"""Activation criteria: mean |a| and APoZ, from forward hooks over calibration batches.

Statistics are recorded once per context for every module output and every call of it
(see :mod:`prunekit.importance.calibration`); a group reads them at its ``sources``: the
modules whose output carries its channels, listed in execution order. The sources are
walked in that order, taking for a module called several times the first call after the
previous source's call, and the *last* source is used: the most downstream tensor,
normally the one after the activation function. Channels that no module outputs on its
own (attention heads) are read at the input of the layer consuming them.
"""

from __future__ import annotations

import torch
from torch import nn

from prunekit.importance.calibration import ActStats, ActTable, activation_stats
from prunekit.importance.consumers import input_spec
from prunekit.importance.context import ImportanceContext
from prunekit.importance.registry import get, register
from prunekit.importance.slices import channel_sum, flatten_index, owner_module
from prunekit.importance.types import GroupLike


@register("activation_mean")
def activation_mean_importance(
    model: nn.Module,
    group: GroupLike,
    ctx: ImportanceContext,
    *,
    fallback: str | None = "l2",
) -> torch.Tensor:
    """Mean absolute activation of each channel over the calibration batches.

    ``s_c = (1/N_c) Σ |a_c|`` over every element of channel ``c`` at the group's source
    (batch, positions, and every feature of the channel when it spans several, e.g. a
    head). Channels that are always near zero contribute little downstream. A group whose
    activation was not observed is scored by ``fallback`` (noted in ``ctx.notes``;
    ``None``: an error).
    """
    found = _channel_stats(model, group, ctx, "activation_mean", fallback)
    if isinstance(found, torch.Tensor):
        return found
    stats, features = found
    return _per_channel(stats.abs_sum, stats.count, features)


@register("apoz")
def apoz_importance(
    model: nn.Module,
    group: GroupLike,
    ctx: ImportanceContext,
    *,
    fallback: str | None = "l2",
) -> torch.Tensor:
    """One minus the Average Percentage of Zeros (Hu et al., 2016): ``s_c = 1 − APoZ_c``.

    ``APoZ_c`` is the fraction of channel ``c``'s activations that are ``≤ 0`` at the
    group's source. After a ReLU these are exactly its zeros; before one (a functional
    ``F.relu`` has no module to hook) they are the values the ReLU will zero. A channel
    that is mostly zero carries little information, so a high APoZ means prune.
    ``fallback`` as in :func:`activation_mean_importance`.
    """
    found = _channel_stats(model, group, ctx, "apoz", fallback)
    if isinstance(found, torch.Tensor):
        return found
    stats, features = found
    return 1.0 - _per_channel(stats.nonpos, stats.count, features)


def _channel_stats(
    model: nn.Module, group: GroupLike, ctx: ImportanceContext, criterion: str,
    fallback: str | None,
) -> tuple[ActStats, list[list[int]]] | torch.Tensor:
    """Statistics and per-channel features of the group's activation, else fallback scores.

    The activation is the output of the last observed source; without one, the input of
    a consuming layer (attention heads exist only as the input of the output projection).
    """
    acts = activation_stats(model, ctx, criterion)
    chosen = _walk_sources(group, acts.outputs)
    if chosen:
        return chosen[-1]
    found = _consumer_input(model, group, acts.inputs)
    if found is not None:
        return found
    if fallback is None or fallback in ("activation_mean", "apoz"):
        raise ValueError(
            f"{criterion}: no activation of group {group.id!r} (size {group.size}) was "
            f"observed at its sources {list(group.sources)} nor at a consuming layer's input"
        )
    ctx.note(f"{criterion}: group {group.id!r} has no observed activation; "
             f"scored by {fallback!r}")
    return get(fallback)(model, group, ctx)


def _consumer_input(
    model: nn.Module, group: GroupLike, inputs: ActTable
) -> tuple[ActStats, list[list[int]]] | None:
    """Input statistics of a member layer that consumes the channels (see .consumers)."""
    for member in group.members:
        module, attr = owner_module(model, member.param)
        spec = input_spec(module)
        weight = getattr(module, "weight", None)
        if spec is None or attr != "weight" or member.dim % weight.dim() != spec.weight_dim:
            continue
        name = member.param.rpartition(".")[0]
        extent = weight.shape[spec.weight_dim]
        calls = [stats for (_, width), stats in inputs.get((name, spec.input_dim), {}).items()
                 if width == extent]
        if calls:
            first = min(calls, key=lambda stats: stats.seq)
            return first, [list(idx) for idx in member.index]
    return None


def _walk_sources(group: GroupLike, table: ActTable) -> list[tuple[ActStats, list[list[int]]]]:
    """One observed call per source, following the sources in execution order.

    A module called several times per forward (torchvision's shared ``relu`` in a
    residual block) has one entry per call; the call taken is the first one after the
    previous source's call, so the group reads *its* activation, not another call's.
    A source wider than the group without its own index map (the GELU after a head
    projection) keeps the layout of the previous source of the same width.
    """
    chosen: list[tuple[ActStats, list[list[int]]]] = []
    last_seq = -1
    for name, dim in group.sources:
        calls = []
        for (_, width), stats in table.get((name, dim), {}).items():
            features = _feature_map(group, name, width)
            if features is None and chosen and chosen[-1][0].abs_sum.shape[0] == width:
                features = chosen[-1][1]  # same layout as the previous source (an activation)
            if features is not None:
                calls.append((stats, features))
        if not calls:
            continue
        calls.sort(key=lambda call: call[0].seq)
        later = [call for call in calls if call[0].seq > last_seq]
        pick = later[0] if later else calls[-1]
        chosen.append(pick)
        last_seq = pick[0].seq
    return chosen


def _feature_map(group: GroupLike, source: str, width: int) -> list[list[int]] | None:
    """Output features of ``source`` belonging to each channel, or None if incompatible.

    Same width: feature ``c`` is channel ``c``. Wider (heads, flattened channels): the
    index map of the source's own weight along dim 0 when the group has it. Nothing else
    is guessed.
    """
    if width == group.size:
        return [[c] for c in range(width)]
    for member in group.members:
        covered = sum(len(idx) for idx in member.index)
        if member.param == f"{source}.weight" and member.dim == 0 and covered == width:
            return [list(idx) for idx in member.index]
    return None


def _per_channel(sums: torch.Tensor, count: int, features: list[list[int]]) -> torch.Tensor:
    """``out[c] = Σ_{f ∈ features[c]} sums[f] / (count · |features[c]|)``."""
    flat, owner = flatten_index(features, sums.shape[0])
    per_channel = channel_sum(sums[flat], owner, len(features))
    sizes = torch.bincount(owner, minlength=len(features)).clamp_min(1)
    return per_channel / (count * sizes)
