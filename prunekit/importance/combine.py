"""Weighted combinations of criteria."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

import torch
from torch import nn

from prunekit.importance.context import ImportanceContext
from prunekit.importance.normalize import normalizer
from prunekit.importance.registry import get
from prunekit.importance.types import GroupLike, ImportanceFn


def combine(
    weights: Mapping[str | ImportanceFn, float], normalize: str = "rank"
) -> ImportanceFn:
    """A criterion that adds normalized scores of several: ``s = Σ_k λ_k · N(s_k)``.

    Parameters
    ----------
    weights
        Criterion (registered name or scoring function) -> non-negative weight λ_k, e.g.
        ``{"l2": 0.5, "taylor": 0.5}``.
    normalize
        ``N``, applied per group to each criterion before adding: ``"rank"`` (average
        ranks scaled to [0, 1]; robust to scale), ``"mean"`` (``s / mean(s)``), ``"max"``
        or ``"none"``.

    Raises
    ------
    ValueError
        If ``weights`` is empty, names an unknown criterion, has a negative or non-finite
        weight, or ``normalize`` is unknown.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("combine: weights must be a non-empty mapping of criterion -> weight")
    norm = normalizer(normalize)
    parts = [(_criterion(key), _weight(key, w)) for key, w in weights.items()]

    def combined(
        model: nn.Module, group: GroupLike, ctx: ImportanceContext | None = None
    ) -> torch.Tensor:
        total = torch.zeros(group.size, dtype=torch.float64)
        for fn, w in parts:
            scores = fn(model, group, ctx).detach().to("cpu", torch.float64)
            total += w * norm(scores)
        return total

    names = ", ".join(f"{_label(k)}: {w}" for k, w in weights.items())
    combined.__name__ = combined.__qualname__ = f"combine({{{names}}}, normalize={normalize!r})"
    return combined


def _criterion(key: str | ImportanceFn) -> ImportanceFn:
    if isinstance(key, str):
        return get(key)
    if callable(key):
        return key
    raise TypeError(f"combine: key {key!r} is neither a criterion name nor callable")


def _weight(key: object, weight: float) -> float:
    if not isinstance(weight, Real) or not math.isfinite(weight) or weight < 0:
        raise ValueError(
            f"combine: weight of {_label(key)} must be finite and >= 0, got {weight!r}"
        )
    return float(weight)


def _label(key: object) -> str:
    return key if isinstance(key, str) else getattr(key, "__name__", repr(key))
