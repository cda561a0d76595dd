"""Depth to a measured speedup: how many of the lowest-scored removable layers to remove.

Units are residual blocks and DenseNet layers in one removal order
(:func:`prunekit.structures.units.find_units`: blocks by angular score, dense layers by
the RMS of the consumer weights that read them), so a depth candidate is a count ``k``.
Timing every ``k`` from 1 up costs one alternating (ABBA) measurement per block — eight
of ResNet-50's twelve for a 2× target, each a few dense forward passes. This search
needs two or three. A one-parameter latency model predicts the relative time after
removing the first ``k`` units from their share of the MACs:

``t(k) / t(0) = β + (1 − β) · f(k)``,  ``f(k) = 1 − Σ_{i<k} MACs(u_i) / MACs(model)``

(``MACs(u_i)``: what removing unit ``i`` saves, see ``Unit.macs``).

``β`` is the share of time that removing blocks does not touch (the stem, the head, the
framework); it starts at 0 (time ∝ MACs) and is refitted to every measurement ``s_k =
t(0) / t(k)`` as ``β = (1/s_k − f(k)) / (1 − f(k))``, clamped to ``[−1, 0.95]`` (negative:
a block costs more than its MACs, e.g. per-operator overhead at batch 1). The next ``k``
is the smallest whose prediction reaches the middle of the acceptance window ``[T, T·(1 +
tol)]``, kept inside the bracket of counts already measured too slow / fast enough (the
bracket's midpoint when the prediction does not move). A candidate inside the window is
accepted at once; otherwise the result is the fewest blocks measured ≥ ``T``, else the
fastest candidate measured — timed once more when it fell short by less than the
tolerance (a near miss may be noise; the readings are averaged), so that a depth cut
that does reach ``T`` is not passed over for a mix with width on one slow reading.
"""

from __future__ import annotations

import copy
import statistics
from typing import Any

from torch import nn

from prunekit.hardware.timing import LatencyFn, paired_latency

BETA_RANGE = (-1.0, 0.95)


def _fit_beta(rel_time: float, f: float) -> float:
    """``β`` such that ``β + (1 − β)·f = rel_time`` (clamped; 0 when ``f`` is 1)."""
    if f >= 1.0:
        return 0.0
    beta = (rel_time - f) / (1.0 - f)
    return min(max(beta, BETA_RANGE[0]), BETA_RANGE[1])


def depth_to_speedup(model: nn.Module, x: Any, target: float, fn: LatencyFn,
                     rounds: int = 2, tolerance: float = 0.1,
                     max_measurements: int = 6) -> dict[str, Any] | None:
    """Fewest lowest-scored blocks whose removal is *measured* ``target``× faster.

    ``model`` is not changed (candidates are cut on copies). Returns ``None`` when the
    model has no removable block, else the chosen candidate as a dict: ``model`` (the
    cut copy), ``plans`` (what :func:`~prunekit.structures.units.remove_units` applied:
    a :class:`~prunekit.structures.DepthPlan` and/or a ConnectionPlan), ``units`` (their
    names), ``blocks_removed``,
    ``dense_ms``, ``pruned_ms``, ``measured_speedup`` and ``measured`` (every count
    timed, with its speedup and the prediction it was aimed by). See the module docstring.
    """
    from prunekit.measure.counting import mac_profile
    from prunekit.structures.units import find_units

    profile = mac_profile(model, x)
    order = find_units(model, x, profile)
    if not order:
        return None
    total = max(profile.total, 1)
    cum = [0.0]
    for unit in order:
        cum.append(min(cum[-1] + unit.macs / total, 1.0))
    aim = target * (1 + tolerance / 2)
    beta = 0.0
    rows: dict[int, dict[str, Any]] = {}

    def predicted(k: int) -> float:
        return 1.0 / max(beta + (1 - beta) * (1 - cum[k]), 1e-3)

    def first_at(lo: int, hi: int) -> int:
        return next((k for k in range(lo + 1, hi + 1) if predicted(k) >= aim), hi)

    lo, hi, top = 0, None, len(order)  # lo: most blocks measured too slow (0 = dense)
    k = first_at(lo, top)
    while True:
        row = _measure(model, order[:k], x, fn, rounds)
        if row is None:  # a container would be emptied: k and every larger count fail
            top = k - 1
        else:
            row["predicted_speedup"] = predicted(k)
            rows[k] = row
            s = row["measured_speedup"]
            if target <= s <= target * (1 + tolerance):
                hi = k
                break
            beta = _fit_beta(1.0 / s, 1 - cum[k])
            if s >= target:
                hi = k if hi is None else min(hi, k)
            else:
                lo = max(lo, k)
        upper = top if hi is None else min(hi - 1, top)
        if lo + 1 > upper or len(rows) >= max_measurements:
            break
        k = first_at(lo, upper)
        if k in rows:
            k = (lo + 1 + upper) // 2
        if k in rows:
            break
    if not rows:
        return None
    best = rows[hi] if hi is not None else max(rows.values(),
                                                key=lambda r: r["measured_speedup"])
    if hi is None:
        retime_near_miss(model, best, fn, rounds, target, tolerance)
    best["measured"] = [{"blocks_removed": j, "speedup": r["measured_speedup"],
                         "predicted_speedup": r["predicted_speedup"]}
                        for j, r in sorted(rows.items())]
    return best


def _measure(model: nn.Module, units: list, x: Any, fn: LatencyFn,
             rounds: int) -> dict[str, Any] | None:
    """Cut ``units`` from a copy and time it against ``model`` (None if the cut fails)."""
    from prunekit.structures.units import remove_units

    cand = copy.deepcopy(model)
    try:
        plans = remove_units(cand, units, x)
    except (ValueError, RuntimeError):
        return None
    dense_ms, ms = paired_latency(model, cand, fn, rounds)
    return {"kind": "depth", "blocks_removed": len(units), "model": cand, "plans": plans,
            "units": [u.name for u in units], "dense_ms": dense_ms, "pruned_ms": ms,
            "measured_speedup": dense_ms / ms}


def retime(model: nn.Module, row: dict[str, Any], fn: LatencyFn, rounds: int,
           times: int = 1) -> None:
    """Time ``row``'s cut against ``model`` ``times`` more; its ``measured_speedup`` becomes
    the median of all its readings (kept in ``row["readings"]``; with two, their mean)."""
    readings = row.setdefault("readings", [row["measured_speedup"]])
    for _ in range(times):
        dense_ms, ms = paired_latency(model, row["model"], fn, rounds)
        readings.append(dense_ms / ms)
    row["measured_speedup"] = statistics.median(readings)
    row["pruned_ms"] = row["dense_ms"] / row["measured_speedup"]


def retime_near_miss(model: nn.Module, row: dict[str, Any], fn: LatencyFn, rounds: int,
                     target: float, tolerance: float) -> None:
    """A candidate that fell short of ``target`` by less than ``tolerance`` (``s·(1 + tol)
    ≥ T``) may be a noisy reading: :func:`retime` it once (its readings averaged)."""
    if row["measured_speedup"] < target <= row["measured_speedup"] * (1 + tolerance):
        retime(model, row, fn, rounds)
