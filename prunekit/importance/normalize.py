"""Per-group score normalizations, so scores of different groups or criteria compare."""

from __future__ import annotations

from collections.abc import Callable

import torch

Normalizer = Callable[[torch.Tensor], torch.Tensor]


def by_mean(scores: torch.Tensor) -> torch.Tensor:
    """``s / mean(s)`` (unchanged if the mean is not positive): an average channel is 1."""
    mean = scores.mean()
    return scores / mean if mean > 0 else scores


def by_max(scores: torch.Tensor) -> torch.Tensor:
    """``s / max(s)`` (unchanged if the max is not positive): the best channel is 1."""
    top = scores.max()
    return scores / top if top > 0 else scores


def by_rank(scores: torch.Tensor) -> torch.Tensor:
    """Average ranks scaled to [0, 1]: ``(rank(s) − 1) / (n − 1)``, ties share a rank.

    Invariant to any increasing transform of the scores, which makes criteria with very
    different scales (a norm, a gradient product, a fraction) safe to add.
    """
    n = scores.numel()
    if n < 2:
        return torch.ones_like(scores, dtype=torch.float64)
    values, inverse = torch.unique(scores, sorted=True, return_inverse=True)
    counts = torch.bincount(inverse, minlength=values.numel()).double()
    first = torch.cumsum(counts, 0) - counts          # 0-based rank of each value's first
    average = first + (counts - 1) / 2
    return average[inverse] / (n - 1)


NORMALIZERS: dict[str, Normalizer] = {
    "mean": by_mean,
    "max": by_max,
    "rank": by_rank,
    "none": lambda scores: scores,
}


def normalizer(name: str) -> Normalizer:
    """The normalization called ``name``; ValueError listing the known ones otherwise."""
    if name not in NORMALIZERS:
        raise ValueError(f"unknown normalize {name!r}; known: {', '.join(sorted(NORMALIZERS))}")
    return NORMALIZERS[name]
