"""Structural types for the group contract (see docs/architecture.md).

The importance layer depends only on the *shape* of a group, not on the graph package, so
that it can be used (and tested) with any object that has these attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from prunekit.importance.context import ImportanceContext


class MemberLike(Protocol):
    """One tensor slice cut together with a group.

    ``param`` is a fully qualified parameter or buffer name, ``dim`` the dimension cut and
    ``index[c]`` the indices along ``dim`` that belong to channel ``c``.
    """

    param: str
    dim: int
    index: list[list[int]]


class GroupLike(Protocol):
    """A set of coupled channels: ``size`` channels, cut in every member at once.

    ``sources`` lists ``(module_name, dim)`` pairs: modules whose output carries the
    channels along ``dim``, in execution order.
    """

    id: str
    size: int
    members: Sequence[MemberLike]
    sources: Sequence[tuple[str, int]]


ImportanceFn = Callable[[nn.Module, Any, "ImportanceContext"], torch.Tensor]
"""A scoring function: ``fn(model, group, ctx) -> Tensor`` of shape ``(group.size,)``,
higher means keep."""
