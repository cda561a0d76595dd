"""From scores to a removal plan: which channels of which group to remove.

Two modes:

* **layer-wise** (``global_ranking=False``): every group of ``n`` channels loses
  ``⌊ratio · n⌋`` channels, its lowest-scoring ones.
* **global** (``global_ranking=True``): scores are normalized per group (``normalize``,
  default ``s / mean(s)``) so groups of different scale compare, then the
  ``⌊ratio · Σ n⌋`` lowest channels over all groups are removed — one global threshold,
  except that a group stops losing channels at its lower bound.

In both modes a group keeps at least ``max(1, min_keep, ⌈(1 − max_ratio) · n⌉)``
channels (never zero), and its kept width is then moved to the nearest multiple of
``round_to`` within ``[lower bound, n]`` (ties go up, toward keeping more); a group with no
such multiple is left whole. Rounding makes the total removed differ slightly from
``ratio``. Within a group the lowest scores go first; ties go to the lower index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import torch

from prunekit.importance.normalize import normalizer

_EPS = 1e-9  # so that 0.29 * 100 = 28.999999999999996 still counts as 29


def rank_channels(
    scores_by_group: Mapping[str, torch.Tensor | Sequence[float]],
    global_ranking: bool = False,
    ratio: float = 0.5,
    min_keep: int = 1,
    max_ratio: float = 1.0,
    round_to: int = 1,
    normalize: str = "mean",
    group_ratios: Mapping[str, float] | None = None,
) -> dict[str, list[int]]:
    """Channels to remove per group: ``{group_id: sorted channel indices}``.

    Parameters
    ----------
    scores_by_group
        Group id -> 1-D scores, higher = keep.
    global_ranking
        One threshold over all groups (True) or the same ratio in every group (False).
    ratio
        Fraction of channels to remove, in [0, 1). A *channel* ratio: the MAC reduction
        is larger (a layer between two pruned groups loses ``1 − (1 − ratio)²``).
    min_keep
        Minimum number of channels every group keeps (at least 1 is always kept).
    max_ratio
        Maximum fraction of any one group that may be removed, in (0, 1].
    round_to
        Kept widths are multiples of this (hardware tiles), see the module docstring.
    normalize
        Per-group normalization for global ranking: ``"mean"``, ``"max"``, ``"rank"``,
        ``"none"``.
    group_ratios
        Group id -> its own ratio, overriding ``ratio``; such a group is ranked on its own
        (layer-wise) also under global ranking, and the global pool is the other groups.

    Returns
    -------
    dict
        Every group id, mapped to the (possibly empty) ascending list of channels to remove.

    Raises
    ------
    ValueError
        On a bad argument (the message names it) or non-finite / non-1-D scores.
    """
    _check_args(ratio, min_keep, max_ratio, round_to)
    scores = {gid: _as_scores(gid, s) for gid, s in scores_by_group.items()}
    own = _check_group_ratios(group_ratios, scores)
    lower = {gid: _lower_bound(s.numel(), min_keep, max_ratio) for gid, s in scores.items()}
    pool = {gid: s for gid, s in scores.items() if gid not in own}
    if global_ranking:
        norm = normalizer(normalize)
        kept = _global_kept({gid: norm(s) for gid, s in pool.items()}, lower, ratio)
    else:
        kept = {gid: _layer_kept(s.numel(), lower[gid], ratio) for gid, s in pool.items()}
    kept.update({gid: _layer_kept(scores[gid].numel(), lower[gid], r) for gid, r in own.items()})
    return {
        gid: _lowest(s, s.numel() - _round_kept(s.numel(), kept[gid], lower[gid], round_to))
        for gid, s in scores.items()
    }


def _layer_kept(n: int, lower: int, ratio: float) -> int:
    return max(lower, n - _floor(ratio * n))


def _check_group_ratios(
    group_ratios: Mapping[str, float] | None, scores: Mapping[str, torch.Tensor]
) -> dict[str, float]:
    own = dict(group_ratios or {})
    unknown = sorted(set(own) - set(scores))
    if unknown:
        raise ValueError(f"group_ratios names unknown group ids {unknown}")
    for gid, r in own.items():
        if not _is_number(r) or not 0 <= r < 1:
            raise ValueError(f"group_ratios[{gid!r}] must be a number in [0, 1), got {r!r}")
    return own


def _global_kept(
    normed: dict[str, torch.Tensor], lower: dict[str, int], ratio: float
) -> dict[str, int]:
    """Greedy global threshold: remove the lowest normalized scores, respecting bounds."""
    ids = list(normed)
    total = sum(s.numel() for s in normed.values())
    budget = _floor(ratio * total)
    kept = {gid: s.numel() for gid, s in normed.items()}
    if budget == 0 or not ids:
        return kept
    values = torch.cat([normed[gid] for gid in ids])
    owner = torch.cat([torch.full((normed[gid].numel(),), i) for i, gid in enumerate(ids)])
    order = torch.sort(values, stable=True).indices
    for i in owner[order].tolist():
        gid = ids[i]
        if kept[gid] > lower[gid]:
            kept[gid] -= 1
            budget -= 1
            if budget == 0:
                break
    return kept


def _round_kept(n: int, kept: int, lower: int, round_to: int) -> int:
    """The multiple of ``round_to`` in ``[lower, n]`` nearest to ``kept`` (ties up), else n."""
    if round_to == 1:
        return kept
    first = math.ceil(lower / round_to) * round_to
    candidates = range(first, n + 1, round_to)
    if not candidates:
        return n
    return min(candidates, key=lambda k: (abs(k - kept), -k))


def _lowest(scores: torch.Tensor, count: int) -> list[int]:
    if count <= 0:
        return []
    order = torch.sort(scores, stable=True).indices[:count]
    return sorted(order.tolist())


def _lower_bound(n: int, min_keep: int, max_ratio: float) -> int:
    keep_for_ratio = math.ceil((1.0 - max_ratio) * n - _EPS)
    return min(n, max(1, min_keep, keep_for_ratio))


def _floor(x: float) -> int:
    return math.floor(x + _EPS)


def _as_scores(gid: str, scores: torch.Tensor | Sequence[float]) -> torch.Tensor:
    s = torch.as_tensor(scores).detach().to("cpu", torch.float64)
    if s.dim() != 1 or s.numel() == 0:
        raise ValueError(f"scores of group {gid!r} must be a non-empty 1-D tensor, got {s.shape}")
    if not torch.isfinite(s).all():
        raise ValueError(f"scores of group {gid!r} contain NaN or inf")
    return s


def _check_args(ratio: float, min_keep: int, max_ratio: float, round_to: int) -> None:
    if not _is_number(ratio) or not 0 <= ratio < 1:
        raise ValueError(f"ratio must be a number in [0, 1), got {ratio!r}")
    if not _is_int(min_keep) or min_keep < 0:
        raise ValueError(f"min_keep must be a non-negative int, got {min_keep!r}")
    if not _is_number(max_ratio) or not 0 < max_ratio <= 1:
        raise ValueError(f"max_ratio must be a number in (0, 1], got {max_ratio!r}")
    if not _is_int(round_to) or round_to < 1:
        raise ValueError(f"round_to must be a positive int, got {round_to!r}")


def _is_number(x: object) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _is_int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)
