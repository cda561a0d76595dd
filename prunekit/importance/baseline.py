"""The random baseline: every serious criterion should beat it."""

from __future__ import annotations

import zlib

import torch
from torch import nn

from prunekit.importance.context import ImportanceContext
from prunekit.importance.registry import register
from prunekit.importance.types import GroupLike


@register("random")
def random_importance(
    model: nn.Module,
    group: GroupLike,
    ctx: ImportanceContext | None = None,
    *,
    seed: int | None = None,
) -> torch.Tensor:
    """Uniform random scores in [0, 1), reproducible per (seed, group id).

    The generator is seeded with ``seed`` (default ``ctx.seed``, else 0) plus the CRC-32
    of the group id, so two groups get different draws and a rerun gets the same ones,
    independent of the order in which groups are scored and of the global RNG.
    """
    base = seed if seed is not None else (ctx.seed if ctx is not None else 0)
    generator = torch.Generator().manual_seed(base + zlib.crc32(group.id.encode()))
    return torch.rand(group.size, generator=generator, dtype=torch.float64)
