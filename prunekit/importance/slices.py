"""Read the per-channel slices of a group's members.

A member ``(param, dim, index)`` owns, for channel ``c``, the sub-tensors at positions
``index[c]`` along ``dim``. Criteria reduce those slices to one number per channel and
sum the numbers over members; this module does the slicing once, vectorized, so that a
criterion is a one-line reduction.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from prunekit.importance.types import GroupLike, MemberLike


def resolve_tensor(model: nn.Module, name: str) -> torch.Tensor:
    """The parameter or buffer called ``name`` (fully qualified) in ``model``.

    Raises
    ------
    ValueError
        If ``model`` has neither a parameter nor a buffer of that name.
    """
    try:
        return model.get_parameter(name)
    except AttributeError:
        pass
    try:
        return model.get_buffer(name)
    except AttributeError:
        raise ValueError(
            f"member param {name!r} is not a parameter or buffer of the model"
        ) from None


def owner_module(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """``(module, attribute)`` owning the tensor called ``name``."""
    prefix, _, attr = name.rpartition(".")
    return model.get_submodule(prefix), attr


def member_rows(
    tensor: torch.Tensor, member: MemberLike, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slices of ``tensor`` owned by the channels of ``member``.

    Returns
    -------
    rows : Tensor, shape (n_indices, k)
        ``tensor`` with ``member.dim`` moved first, restricted to the indices of all
        channels (in channel order) and flattened to one row per index.
    owner : Tensor of int64, shape (n_indices,)
        The channel each row belongs to.

    Raises
    ------
    ValueError
        If ``member.index`` does not have ``size`` entries or an index is out of range.
    """
    dim = _check_member(tensor, member, size)
    flat = [i for idx in member.index for i in idx]
    owner = [c for c, idx in enumerate(member.index) for _ in idx]
    device = tensor.device
    moved = tensor.detach().movedim(dim, 0)
    if flat == list(range(moved.shape[0])):  # the whole dim in order: no gather needed
        rows = moved.reshape(len(flat), -1)
    else:
        positions = torch.as_tensor(flat, dtype=torch.long, device=device)
        rows = moved.index_select(0, positions).reshape(len(flat), -1)
    return rows, torch.as_tensor(owner, dtype=torch.long, device=device)


def wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in at least float32 (half precision would overflow or lose sums)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def channel_sum(values: torch.Tensor, owner: torch.Tensor, size: int) -> torch.Tensor:
    """Sum per-row ``values`` into their channels: ``out[c] = Σ_{r: owner[r]=c} values[r]``.

    Returned on the CPU in float64 so that scores from members on different devices and
    dtypes add exactly and rank without float16 ties.
    """
    values = values.detach().to("cpu", torch.float64)
    out = torch.zeros(size, dtype=torch.float64)
    return out.index_add_(0, owner.cpu(), values)


def is_parameter(model: nn.Module, member: MemberLike) -> bool:
    """Whether ``member.param`` names a parameter (not a buffer such as running stats).

    Raises ValueError (via :func:`resolve_tensor`) if it names neither.
    """
    return isinstance(resolve_tensor(model, member.param), nn.Parameter)


def reduce_members(
    model: nn.Module,
    group: GroupLike,
    row_fn: Callable[[MemberLike, torch.Tensor], torch.Tensor],
    select: Callable[[nn.Module, MemberLike], bool] = is_parameter,
) -> list[torch.Tensor]:
    """Per-member channel vectors of the members for which ``select(model, member)`` holds.

    ``row_fn(member, rows)`` reduces the member's rows (see :func:`member_rows`) to one
    value per row; the values are summed into channels. The result lists one float64
    vector of shape ``(group.size,)`` per selected member. By default only parameters are
    selected: buffers such as BatchNorm running statistics are not weights.
    """
    out = []
    for member in group.members:
        if select(model, member):
            rows, owner = member_rows(resolve_tensor(model, member.param), member, group.size)
            out.append(channel_sum(row_fn(member, rows), owner, group.size))
    return out


def _check_member(tensor: torch.Tensor, member: MemberLike, size: int) -> int:
    if len(member.index) != size:
        raise ValueError(
            f"member {member.param!r} has {len(member.index)} index lists, group size is {size}"
        )
    ndim = max(tensor.dim(), 1)
    if not -ndim <= member.dim < ndim:
        raise ValueError(f"member {member.param!r}: dim {member.dim} out of range ({ndim}-D)")
    dim = member.dim % ndim
    extent = tensor.shape[dim] if tensor.dim() else 1
    bad = [i for idx in member.index for i in idx if not 0 <= i < extent]
    if bad:
        raise ValueError(
            f"member {member.param!r}: index {bad[0]} out of range for dim {dim} of size {extent}"
        )
    return dim
