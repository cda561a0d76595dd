"""A group's slices, read one way: the compiled layout that importance, the proximal
step and surgery share.

A group member ``(param, dim, index)`` says: channel ``c`` owns the positions
``index[c]`` along ``dim`` of tensor ``param``. Compiled, that is the CSR pair
``(flat, ptr)`` — channel ``c`` owns ``flat[ptr[c]:ptr[c + 1]]`` — built once per member
(like ``prunekit.sparsity.Groups`` for features). :func:`resolve` finds the tensor a name
means *now*: the parameter, its dense original when a parametrization (a mask) wraps it,
or a buffer. :func:`slices` turns a group into :class:`Slice` s, the arrays a criterion
reduces, the prox scales and the surgery cuts. Imports only numpy and torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["Compiled", "Slice", "compile_member", "is_parameter", "resolve", "slices"]


@dataclass(frozen=True)
class Compiled:
    """``flat[ptr[c]:ptr[c + 1]]``: the positions of channel ``c`` (int64 numpy arrays)."""

    flat: np.ndarray
    ptr: np.ndarray

    @property
    def size(self) -> int:
        return self.ptr.size - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.ptr)

    @property
    def owner(self) -> np.ndarray:
        """The channel of each entry of ``flat``."""
        return np.repeat(np.arange(self.size, dtype=np.int64), self.counts)

    def of(self, channels: Iterable[int]) -> np.ndarray:
        """The positions of ``channels`` (in channel order, concatenated)."""
        parts = [self.flat[self.ptr[c]:self.ptr[c + 1]] for c in channels]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def compile_member(member: Any) -> Compiled:
    """The compiled layout of a member (cached on it when it allows attributes).

    Raises ValueError on a negative index.
    """
    cached = getattr(member, "_compiled", None)
    if isinstance(cached, Compiled):
        return cached
    index: Sequence[Sequence[int]] = member.index
    lengths = np.fromiter(map(len, index), dtype=np.int64, count=len(index))
    ptr = np.zeros(len(index) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    flat = np.fromiter((i for ix in index for i in ix), dtype=np.int64, count=int(ptr[-1]))
    if flat.size and flat.min() < 0:
        raise ValueError(f"member {member.param!r}: negative index {int(flat.min())}")
    out = Compiled(flat, ptr)
    try:
        object.__setattr__(member, "_compiled", out)
    except (AttributeError, TypeError):
        pass
    return out


def resolve(model: nn.Module, name: str) -> torch.Tensor:
    """The tensor ``name`` means in ``model``: the parameter, the dense ``original`` of a
    parametrized one (``parametrizations.<leaf>.original``), or the buffer.

    Raises ValueError when ``model`` has none of these.
    """
    mod, _, leaf = name.rpartition(".")
    for candidate in (name, f"{mod}.parametrizations.{leaf}.original".lstrip(".")):
        try:
            return model.get_parameter(candidate)
        except AttributeError:
            pass
    try:
        return model.get_buffer(name)
    except AttributeError:
        raise ValueError(f"group member {name!r} is not a parameter or buffer of the "
                         "model") from None


def is_parameter(model: nn.Module, name: str) -> bool:
    """Whether ``name`` resolves to a parameter (not a buffer such as running stats)."""
    return isinstance(resolve(model, name), nn.Parameter)


@dataclass
class Slice:
    """A member compiled against a model: ``tensor`` (resolved), positions ``flat`` along
    ``dim``, ``owner[i]`` the channel of ``flat[i]`` (both int64 on the tensor's device),
    ``counts[c]`` positions of channel ``c`` (may be 0; CPU)."""

    name: str
    tensor: torch.Tensor
    dim: int
    flat: torch.Tensor
    owner: torch.Tensor
    counts: torch.Tensor

    @property
    def param(self) -> torch.Tensor:  # the proximal step's name for it
        return self.tensor


def _slice(model: nn.Module, member: Any, size: int) -> Slice:
    tensor = resolve(model, member.param)
    c = compile_member(member)
    if c.size != size:
        raise ValueError(f"member {member.param!r} has {c.size} index lists, group size is "
                         f"{size}")
    ndim = max(tensor.dim(), 1)
    if not -ndim <= member.dim < ndim:
        raise ValueError(f"member {member.param!r}: dim {member.dim} out of range "
                         f"({tensor.dim()}-D)")
    dim = member.dim % ndim
    extent = tensor.shape[dim] if tensor.dim() else 1
    if c.flat.size and c.flat.max() >= extent:
        raise ValueError(f"member {member.param!r}: index {int(c.flat.max())} out of range "
                         f"for dim {dim} of size {extent}")
    dev = tensor.device
    return Slice(member.param, tensor, dim, torch.from_numpy(c.flat).to(dev),
                 torch.from_numpy(c.owner).to(dev), torch.from_numpy(c.counts))


def slices(model: nn.Module, group: Any, params_only: bool = True) -> list[Slice]:
    """Every member of ``group`` compiled against ``model`` (parameters only by default:
    BatchNorm running statistics are not weights)."""
    out = []
    for m in group.members:
        if params_only and not is_parameter(model, m.param):
            continue
        out.append(_slice(model, m, group.size))
    return out
