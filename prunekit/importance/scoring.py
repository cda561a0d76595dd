"""Score many groups with one criterion, checking what the criterion returns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from prunekit.importance.context import ImportanceContext
from prunekit.importance.registry import resolve
from prunekit.importance.types import GroupLike, ImportanceFn


def score_groups(
    model: nn.Module,
    groups: Iterable[GroupLike],
    importance: str | ImportanceFn | Mapping[str, float] = "l2",
    ctx: ImportanceContext | None = None,
) -> dict[str, torch.Tensor]:
    """``{group.id: scores}`` for every group, scores as float64 CPU tensors.

    ``importance`` is a registered name, a ``{name: weight}`` mapping (see
    :func:`~prunekit.importance.combine.combine`) or a scoring function. Data-driven
    criteria share ``ctx``'s cached calibration passes across all groups.

    Raises
    ------
    ValueError
        If a criterion returns something other than ``group.size`` finite numbers.
    """
    fn = resolve(importance)
    ctx = ctx if ctx is not None else ImportanceContext()
    return {group.id: _checked(fn(model, group, ctx), group, fn) for group in groups}


def _checked(scores: object, group: GroupLike, fn: ImportanceFn) -> torch.Tensor:
    name = getattr(fn, "__name__", repr(fn))
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"importance {name} returned {type(scores).__name__}, not a Tensor")
    scores = scores.detach().to("cpu", torch.float64)
    if scores.shape != (group.size,):
        raise ValueError(
            f"importance {name} returned shape {tuple(scores.shape)} for group "
            f"{group.id!r}; expected ({group.size},)"
        )
    if not torch.isfinite(scores).all():
        raise ValueError(f"importance {name} returned NaN or inf for group {group.id!r}")
    return scores
