"""Which channels a proximal training run removes: plain functions on channel scores.

After proximal training some channels are exactly zero (free to remove). A budget may ask
for more: :func:`fill` adds the weakest channels until a cost model says the budget is
met, without overshooting far below it; :func:`rounded` makes kept widths multiples of a
tile size. :func:`plan_removal` puts them together. Nothing here touches a model: scores,
minimum widths and a cost function in, ``{group id: channels}`` out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

Plan = dict[str, list[int]]
CostFn = Callable[[Plan], float]

__all__ = ["fill", "plan_removal", "rounded", "strongest"]


def strongest(scores: torch.Tensor, k: int) -> set[int]:
    """Indices of the ``k`` largest scores (all of them when there are fewer)."""
    return set(torch.topk(scores, min(k, len(scores))).indices.tolist())


def fill(plan: Plan, order: Sequence[tuple[str, int]], cost: CostFn, target: float,
         tolerance: float, fallback: bool) -> set[tuple[str, int]]:
    """Add channels of ``order`` to ``plan`` (in place) while its cost is above
    ``target``, skipping any that would land below ``(1 − tolerance)·target``. With
    ``fallback``, if that leaves the cost above target, the first skipped channel that
    reaches it is added anyway. Returns the added (group, channel) pairs."""
    lower = (1.0 - tolerance) * target
    current = cost(plan)
    added, skipped = set(), []
    for gid, c in order:
        if current <= target:
            break
        plan.setdefault(gid, []).append(c)
        after = cost(plan)
        if after < lower:
            plan[gid].pop()
            skipped.append((gid, c))
            continue
        current = after
        added.add((gid, c))
    if fallback and current > target:
        for gid, c in skipped:
            plan.setdefault(gid, []).append(c)
            added.add((gid, c))
            if cost(plan) <= target:
                break
    return added


def rounded(size: int, cut: list[int], scores: torch.Tensor, m: int, min_width: int
            ) -> list[int]:
    """``cut`` changed so that a group of ``size`` keeps a multiple of ``m`` channels:
    down by cutting the weakest kept ones, or up (bringing back the strongest cut ones)
    when rounding down would go below ``min_width``. Groups of at most ``m`` stay."""
    kept = size - len(cut)
    if size <= m or kept % m == 0:
        return cut
    down = kept // m * m
    if down >= max(min_width, 1):
        alive = sorted((c for c in range(size) if c not in set(cut)),
                       key=lambda c: (float(scores[c]), c))
        return sorted(set(cut) | set(alive[:kept - down]))
    up = min(size, -(-kept // m) * m)
    back = sorted(cut, key=lambda c: (-float(scores[c]), c))[:up - kept]
    return sorted(set(cut) - set(back))


def plan_removal(scores: Mapping[str, torch.Tensor], min_width: Mapping[str, int],
                 zeros: Mapping[str, list[int]], round_to: int = 1,
                 target: float | None = None, cost: CostFn | None = None,
                 tolerance: float = 0.0) -> Plan:
    """The channels to cut: the zero ones (``zeros``), plus — with a ``target`` cost — the
    weakest by ``scores`` until ``cost(plan) <= target`` (:func:`fill`), never the
    ``min_width`` strongest of a group; widths then rounded to multiples of ``round_to``.
    """
    keep = {gid: strongest(s, min_width[gid]) for gid, s in scores.items()}
    plan = {gid: [c for c in ch if c not in keep[gid]] for gid, ch in zeros.items()}
    if target is not None:
        order = sorted((float(s[c]), gid, c) for gid, s in scores.items()
                       for c in range(len(s))
                       if c not in plan.get(gid, []) and c not in keep[gid])
        fill(plan, [(gid, c) for _, gid, c in order], cost, target, tolerance, fallback=True)
    plan = {gid: sorted(set(ch)) for gid, ch in plan.items() if ch}
    if round_to > 1:
        plan = {gid: rounded(len(s), plan.get(gid, []), s, round_to, min_width[gid])
                for gid, s in scores.items()}
    return {gid: ch for gid, ch in plan.items() if ch}
