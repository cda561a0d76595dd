"""Data-free criteria: weight magnitudes and normalization scales."""

from __future__ import annotations

import re

import torch
from torch import nn

from prunekit.importance.context import ImportanceContext
from prunekit.importance.registry import get, register
from prunekit.importance.slices import owner_module, reduce_members, wide
from prunekit.importance.types import GroupLike, MemberLike


@register("l1")
def l1_importance(
    model: nn.Module,
    group: GroupLike,
    ctx: ImportanceContext | None = None,
    *,
    normalize_members: bool = False,
) -> torch.Tensor:
    """L1 norm of each channel over all coupled parameter slices.

    ``s_c = Σ_m ‖w_m[c]‖₁`` where ``w_m[c]`` is channel ``c``'s slice of member ``m``
    (every parameter cut with the group: the producing layer's filters and bias, the
    normalization scale and shift, the consuming layer's input slices ...). Buffers such
    as running statistics are not weights and are left out.

    With ``normalize_members=True`` each member's vector is divided by its mean over
    channels first, ``s_c = Σ_m ‖w_m[c]‖₁ / mean_c' ‖w_m[c']‖₁``, so every member has the
    same say whatever its width or scale (a 4608-wide next-layer slice would otherwise
    drown a 1-wide BatchNorm scale).
    """
    parts = reduce_members(model, group, lambda _, w: wide(w).abs())
    return _sum_members(parts, group, normalize_members)


@register("l2")
def l2_importance(
    model: nn.Module,
    group: GroupLike,
    ctx: ImportanceContext | None = None,
    *,
    normalize_members: bool = False,
) -> torch.Tensor:
    """L2 norm of each channel over all coupled parameter slices.

    ``s_c = ( Σ_m ‖w_m[c]‖₂² )^½`` — the norm of the concatenation of channel ``c``'s
    slices of every member; this is the quantity the group-lasso penalty ``Σ_g ‖w_g‖₂``
    drives to zero. With ``normalize_members=True`` the squared norms of each member are
    divided by their mean over channels before summing (see :func:`l1_importance`).
    """
    parts = reduce_members(model, group, lambda _, w: wide(w).pow(2))
    return _sum_members(parts, group, normalize_members).sqrt()


@register("bn_scale")
def bn_scale_importance(
    model: nn.Module,
    group: GroupLike,
    ctx: ImportanceContext | None = None,
    *,
    fallback: str | None = "l2",
) -> torch.Tensor:
    """|γ| of the normalization layers in the group (network slimming).

    ``s_c = Σ_{m ∈ norm scales} |γ_m[c]|`` over members that are the scale of a
    normalization module (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm and
    look-alikes by class name); the owning module's type decides, not the parameter name.

    A group without a normalization scale (e.g. a transformer MLP's hidden units) is
    scored by ``fallback`` (default ``"l2"``) and a note is added to ``ctx.notes``; with
    ``fallback=None`` it is an error.
    """
    parts = reduce_members(model, group, lambda _, w: wide(w).abs(), _is_norm_scale)
    if parts:
        return torch.stack(parts).sum(0)
    if fallback is None or fallback == "bn_scale":
        raise ValueError(f"bn_scale: group {group.id!r} has no normalization scale member")
    if ctx is not None:
        ctx.note(f"bn_scale: groups without a normalization scale are scored by {fallback!r}")
    return get(fallback)(model, group, ctx)


_NORM_TYPES = tuple(
    t
    for t in (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
              getattr(nn, "RMSNorm", None))
    if t is not None
)
_NORM_NAME = re.compile(r"(Batch|Layer|Group|Instance|RMS)Norm")
_SCALE_ATTRS = ("weight", "scale", "gamma")


def is_norm_module(module: nn.Module) -> bool:
    """Whether ``module`` is a normalization layer (by type, or by class name for others)."""
    return isinstance(module, _NORM_TYPES) or bool(_NORM_NAME.search(type(module).__name__))


def _is_norm_scale(model: nn.Module, member: MemberLike) -> bool:
    try:
        module, attr = owner_module(model, member.param)
    except AttributeError:
        return False
    is_param = isinstance(getattr(module, attr, None), nn.Parameter)
    return is_param and attr in _SCALE_ATTRS and is_norm_module(module)


def _sum_members(parts: list[torch.Tensor], group: GroupLike, normalize: bool) -> torch.Tensor:
    if not parts:
        raise ValueError(f"group {group.id!r} has no parameter members to score")
    if normalize:
        parts = [p / p.mean() if p.mean() > 0 else p for p in parts]
    return torch.stack(parts).sum(0)
