"""Which channels go, group by group, as a path of steps down hardware-friendly widths.

Each group walks down its ladder of widths (:func:`~prunekit.hardware.rounding.width_levels`),
always removing its lowest-scoring channels. At every step the greedy takes the group step
that loses the least importance per millisecond of predicted latency saved:

``choose argmin_g  Σ_{c ∈ step_g} s̃_c / (T(now) − T(after step_g))``,  ``s̃ = s / mean(s_g)``

(steps that save no predicted time come last, least important first: the measured search
decides whether they help). The path — the ordered list of steps — is what
the measured search bisects over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from prunekit.graph import Group
from prunekit.hardware.latency_model import LatencyModel, Widths
from prunekit.hardware.rounding import width_levels


@dataclass
class GroupLadder:
    """One group's removal order, allowed widths and per-layer index counts."""

    group: Group
    order: list[int]                 # channels in removal order (protected ones last)
    levels: list[int]                # allowed kept widths, descending, levels[0] = size
    cost: list[float]                # cost[k] = Σ normalized score of the first k removed
    counts: dict[tuple[str, int], list[int]]  # (weight, dim) -> indices removed after k
    multiple: int = 1                # channel multiple of the aligned widths


def _order(group: Group, scores: torch.Tensor) -> tuple[list[int], int]:
    """Lowest score first; the best channel of every member goes last (never removed, so no
    member loses all its indices). Returns the order and the number of protected channels."""
    ranked = torch.sort(scores, stable=True).indices.tolist()
    protected = set()
    for m in group.members:
        present = [c for c, idx in enumerate(m.index) if idx]
        if present and not protected & set(present):
            protected.add(max(present, key=lambda c: (float(scores[c]), -c)))
    return [c for c in ranked if c not in protected] + sorted(protected), len(protected)


def group_multiple(size: int, multiple: int, per_channel: int = 1) -> int:
    """Channel multiple for a group: tensor widths are ``per_channel`` indices per channel
    (e.g. 12 for an embedding dim shared by 12 heads), so ``multiple / gcd(multiple,
    per_channel)`` channels already give aligned widths; then halved until the group holds
    two of it (a 48-channel group on a device that likes 64 still loses channels in 16s)."""
    multiple //= math.gcd(multiple, max(per_channel, 1))
    while multiple > 1 and size < 2 * multiple:
        multiple //= 2
    return multiple


def _per_channel(group: Group, weights: set[str]) -> int:
    """Indices per channel common to the group's layer weights: the gcd of their sizes
    (ViT's hidden dim has 12 per channel in most weights and 36 in the packed q/k/v
    projection: 12; any channel count that aligns 12-index slices aligns 36-index ones)."""
    sizes = {len(idx) for m in group.members if m.param in weights for idx in m.index if idx}
    return math.gcd(*sizes) if sizes else 1


def make_ladder(group: Group, scores: torch.Tensor, weights: set[str], multiple: int,
                lower: int, levels: int) -> GroupLadder:
    """Ladder of ``group`` given its channel scores (higher = keep)."""
    order, n_protected = _order(group, scores)
    floor = min(group.size, max(lower, n_protected))
    mult = group_multiple(group.size, multiple, _per_channel(group, weights))
    ladder = width_levels(group.size, mult, floor, levels)
    s = scores.to(torch.float64)
    norm = s / s.mean() if float(s.mean()) > 0 else torch.ones_like(s)
    cost = [0.0, *torch.cumsum(norm[order], 0).tolist()]
    counts = {}
    for m in group.members:
        if m.param in weights:
            sizes = [len(m.index[c]) for c in order]
            counts[(m.param, m.dim)] = [0, *torch.cumsum(torch.tensor(sizes), 0).tolist()]
    return GroupLadder(group, order, ladder, cost, counts, mult)


def refine(ladder: GroupLadder, level: int) -> int:
    """Insert every aligned width between ``levels[level - 1]`` and ``levels[level]`` into
    the ladder (finer steps where a coarse one overshoots); returns how many were added."""
    hi, lo = ladder.levels[level - 1], ladder.levels[level]
    first = (hi - 1) // ladder.multiple * ladder.multiple
    extra = [w for w in range(first, lo, -ladder.multiple) if lo < w < hi]
    ladder.levels[level:level] = extra
    return len(extra)


@dataclass
class Allocation:
    """Current level of every ladder and the layer widths it implies."""

    model: LatencyModel
    ladders: dict[str, GroupLadder]
    level: dict[str, int] = field(default_factory=dict)
    layer_groups: dict[str, set[str]] = field(default_factory=dict)
    group_layers: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_weight = {la.weight: la.name for la in self.model.layers}
        for gid, lad in self.ladders.items():
            self.level.setdefault(gid, 0)
            names = sorted({by_weight[w] for w, _ in lad.counts})
            self.group_layers[gid] = names
            for name in names:
                self.layer_groups.setdefault(name, set()).add(gid)

    def removed(self, gid: str, level: int | None = None) -> int:
        lad = self.ladders[gid]
        return lad.group.size - lad.levels[self.level[gid] if level is None else level]

    def widths(self, override: Mapping[str, int] | None = None) -> Widths:
        """``{layer: (cin, cout)}`` at the current levels (``override``: gid -> level)."""
        lv = {**self.level, **(override or {})}
        cut: dict[tuple[str, int], int] = {}
        for gid, lad in self.ladders.items():
            k = self.removed(gid, lv[gid])
            for key, cum in lad.counts.items():
                cut[key] = cut.get(key, 0) + cum[k]
        out = {}
        for la in self.model.layers:
            cout = la.n_out - cut.get((la.weight, 0), 0)
            cin = la.n_in - cut.get((la.weight, 1), 0) * (1 if la.kind == "linear" else
                                                          _conv_groups(la))
            out[la.name] = (cout, cout) if la.depthwise else (cin, cout)
        return out

    def removal(self) -> dict[str, list[int]]:
        """``{group_id: channels to remove}`` at the current levels (non-empty only)."""
        out = {}
        for gid, lad in self.ladders.items():
            k = self.removed(gid)
            if k:
                out[gid] = sorted(lad.order[:k])
        return out

    def step_gain(self, gid: str) -> tuple[float, float] | None:
        """(importance lost, predicted ms saved) of moving ``gid`` one level down."""
        lad = self.ladders[gid]
        nxt = self.level[gid] + 1
        if nxt >= len(lad.levels):
            return None
        names = self.group_layers[gid]
        now, after = self.widths(), self.widths({gid: nxt})
        lm = self.model
        saved = lm.layers_ms(now, names) - lm.layers_ms(after, names)
        saved += lm.rest_at(lm.activation_fraction(now)) - lm.rest_at(
            lm.activation_fraction(after))
        lost = lad.cost[self.removed(gid, nxt)] - lad.cost[self.removed(gid)]
        return lost, saved


def _conv_groups(la: object) -> int:
    groups = dict(la.attrs).get("groups", 1)
    return 1 if la.depthwise else groups


def _rank(lost: float, saved: float, gid: str) -> tuple:
    """Steps that save time first, by importance lost per ms; then (when timings say
    nothing saves time, e.g. on a noisy machine) the least important steps."""
    return (0, lost / saved, gid) if saved > 0 else (1, lost, gid)


def greedy_path(alloc: Allocation, stop_ms: float,
                max_steps: int = 100_000) -> list[tuple[str, int, float]]:
    """Take greedy steps until the prediction is ≤ ``stop_ms`` or every ladder is at its end.

    Returns the path ``[(group_id, new level, predicted ms after the step), ...]``; the
    allocation is left at the end of the path.
    """
    path: list[tuple[str, int, float]] = []
    gains: dict[str, tuple[float, float] | None] = {}
    predicted = alloc.model.predict(alloc.widths())
    while predicted > stop_ms and len(path) < max_steps:
        for gid in alloc.ladders:
            if gid not in gains:
                gains[gid] = alloc.step_gain(gid)
        open_steps = {g: v for g, v in gains.items() if v is not None}
        if not open_steps:
            break
        gid = min(open_steps, key=lambda g: _rank(*open_steps[g], g))
        alloc.level[gid] += 1
        predicted = alloc.model.predict(alloc.widths())
        path.append((gid, alloc.level[gid], predicted))
        stale = {g for name in alloc.group_layers[gid] for g in alloc.layer_groups[name]}
        for g in stale | {gid}:
            gains.pop(g, None)
    return path
