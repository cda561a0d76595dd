"""Read the per-channel slices of a group's members.

A member ``(param, dim, index)`` owns, for channel ``c``, the sub-tensors at positions
``index[c]`` along ``dim``. Criteria reduce those slices to one number per channel and
sum the numbers over members; this module does the slicing once, vectorized, so that a
criterion is a one-line reduction.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

import numpy as np
import torch
from torch import nn

from prunekit.importance.types import GroupLike, MemberLike
from prunekit.layout import compile_member, resolve
from prunekit.layout import is_parameter as is_param_name


def resolve_tensor(model: nn.Module, name: str) -> torch.Tensor:
    """The tensor called ``name`` in ``model`` (:func:`prunekit.layout.resolve`: the
    parameter, its parametrization's dense original, or the buffer).

    Raises
    ------
    ValueError
        If ``model`` has neither a parameter nor a buffer of that name.
    """
    return resolve(model, name)


def owner_module(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """``(module, attribute)`` owning the tensor called ``name``."""
    prefix, _, attr = name.rpartition(".")
    return model.get_submodule(prefix), attr


def member_channels(values: torch.Tensor, member: MemberLike, size: int) -> torch.Tensor:
    """``out[c] = Σ_{i ∈ index[c]} Σ_{other dims} values[..., i, ...]`` for ``member``.

    ``values`` has the shape of the member's tensor (e.g. ``w²`` or ``w·g``). It is first
    summed over every dim but ``member.dim`` — one pass, no copy of slices — and the
    per-index sums are then gathered into channels. Float64 on the CPU.

    Raises
    ------
    ValueError
        If ``member.index`` does not have ``size`` entries or an index is out of range.
    """
    values = values.reshape(values.shape or (1,))
    dim = _check_member(values, member, size)
    other = [d for d in range(values.dim()) if d != dim]
    per_index = values.sum(other) if other else values
    c = compile_member(member)
    if c.flat.size and c.flat.max() >= per_index.shape[0]:
        raise ValueError(f"{member.param}: index {int(c.flat.max())} out of range for a dim "
                         f"of size {per_index.shape[0]}")
    flat, owner = torch.from_numpy(c.flat), torch.from_numpy(c.owner)
    return channel_sum(per_index[flat.to(per_index.device)], owner, size)


def wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in at least float32 (half precision would overflow or lose sums)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def channel_sum(values: torch.Tensor, owner: torch.Tensor, size: int) -> torch.Tensor:
    """``out[c] = Σ_{r: owner[r]=c} values[r]``, in float64 on the CPU."""
    values = values.detach().to("cpu", torch.float64)
    out = torch.zeros(size, dtype=torch.float64)
    return out.index_add_(0, owner.cpu(), values)


def is_parameter(model: nn.Module, member: MemberLike) -> bool:
    """Whether ``member.param`` names a parameter (not a buffer such as running stats).

    Raises ValueError (via :func:`resolve_tensor`) if it names neither.
    """
    return is_param_name(model, member.param)


def reduce_members(
    model: nn.Module,
    group: GroupLike,
    value_fn: Callable[[MemberLike, torch.Tensor], torch.Tensor],
    select: Callable[[nn.Module, MemberLike], bool] = is_parameter,
) -> list[torch.Tensor]:
    """Per-member channel vectors of the members for which ``select(model, member)`` holds.

    ``value_fn(member, tensor)`` maps the member's tensor to elementwise values of the
    same shape (``|w|``, ``w²``, ``w·g`` ...), which :func:`member_channels` sums per
    channel. The result lists one float64 vector of shape ``(group.size,)`` per selected
    member. By default only parameters are selected: buffers such as BatchNorm running
    statistics are not weights.
    """
    out = []
    for member in group.members:
        if select(model, member):
            tensor = resolve_tensor(model, member.param).detach()
            out.append(member_channels(value_fn(member, tensor), member, group.size))
    return out


def _check_member(tensor: torch.Tensor, member: MemberLike, size: int) -> int:
    if len(member.index) != size:
        raise ValueError(
            f"member {member.param!r} has {len(member.index)} index lists, group size is {size}"
        )
    ndim = tensor.dim()
    if not -ndim <= member.dim < ndim:
        raise ValueError(f"member {member.param!r}: dim {member.dim} out of range ({ndim}-D)")
    return member.dim % ndim


def flatten_index(
    index: list[list[int]], extent: int, name: str = "index"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(flat indices, owning channel of each)`` of a per-channel index list, as int64.

    Raises
    ------
    ValueError
        If an index is outside ``[0, extent)``.
    """
    lengths = np.fromiter(map(len, index), dtype=np.int64, count=len(index))
    flat = np.fromiter(chain.from_iterable(index), dtype=np.int64, count=int(lengths.sum()))
    if flat.size and (flat.min() < 0 or flat.max() >= extent):
        bad = flat[(flat < 0) | (flat >= extent)][0]
        raise ValueError(f"{name}: index {bad} out of range for a dim of size {extent}")
    owner = np.repeat(np.arange(len(index), dtype=np.int64), lengths)
    return torch.from_numpy(flat), torch.from_numpy(owner)
