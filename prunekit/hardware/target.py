"""``prune_to_speedup``: ask for 2× faster on a device, get a model *measured* 2× faster.

1. Trace the coupled groups, score channels (any registered importance).
2. Find the channel multiple that runs efficiently on the device (cached width probe);
   every group walks down a ladder of widths on that grid.
3. Build the latency model (per-layer timings on the device, cached; measured rest).
4. Greedy path: steps that lose the least importance per predicted millisecond saved,
   until the prediction passes the target with some margin.
5. Measured search along the path: cut, time against the dense model in alternating
   rounds, restore; calibrate the model on the first measurement, then bisect for the
   shortest prefix whose *measured* speedup meets the target.
6. Cut the chosen prefix (all or nothing) and verify by measurement (twice the rounds of
   a search measurement; this is the speedup reported). A model measured
   slower than the dense one is never returned: the cut is undone and the result says so.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import torch
from torch import nn

from prunekit.graph import GroupSet, build_groups
from prunekit.hardware.allocation import Allocation, greedy_path, make_ladder, refine
from prunekit.hardware.latency_model import LatencyModel, LayerTimer
from prunekit.hardware.probe import probe_widths
from prunekit.hardware.signature import DeviceSpec, device_signature
from prunekit.hardware.timing import (
    LatencyFn,
    model_latency_fn,
    paired_latency,
    paired_rounds,
    with_batch,
)
from prunekit.hardware.verdict import target_line
from prunekit.result import PruneResult, SpeedupResult
from prunekit.surgery import Plan, SurgeryError, remove_channels
from prunekit.surgery.isolate import breaking_groups
from prunekit.surgery.state import Snapshot

OVERSHOOT = 1.5  # the greedy path runs on to this multiple of the target (room to search)
STEP_MARGIN, MAX_STEP, BLIND_STEP = 1.5, 4.0, 2.0  # bound an unbracketed step: _capped


@dataclass
class _Search:
    """State of the measured search along the greedy path."""

    model: nn.Module
    dense: nn.Module
    gs: GroupSet
    alloc: Allocation
    path: list[tuple[str, int, float]]
    inputs: Any
    latency_fn: LatencyFn
    rounds: int
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    calibrated: bool = False
    prior: tuple[float, float, float] | None = None  # the model's (λ, β, rest) as built

    def __post_init__(self) -> None:
        if self.prior is None:  # built before any measurement; a refined copy keeps it
            self.prior = self.alloc.model.params

    def set_prefix(self, i: int) -> None:
        self.alloc.level = dict.fromkeys(self.alloc.level, 0)
        for gid, level, _ in self.path[:i]:
            self.alloc.level[gid] = level

    def predicted(self, i: int) -> float:
        self.set_prefix(i)
        return self.alloc.model.predict(self.alloc.widths())

    def prior_speedup(self, i: int) -> float:
        """Speedup of prefix ``i`` by the latency model as built, before any calibration."""
        self.set_prefix(i)
        lm = self.alloc.model
        return lm.dense_ms / max(lm.predict(self.alloc.widths(), self.prior), 1e-9)

    def measure(self, i: int) -> dict[str, Any]:
        """Cut prefix ``i``, time it against dense, restore; recalibrate the latency model
        on the measurement (its ``λ``; the next prediction starts from the latest one)."""
        if i in self.records:
            return self.records[i]
        pred = self.predicted(i)
        snap = Snapshot.take(self.model)
        try:
            remove_channels(self.model, self.gs, self.alloc.removal(), self.inputs)
            readings = paired_rounds(self.dense, self.model, self.latency_fn, self.rounds)
        except SurgeryError as err:  # all or nothing: the model is already restored
            self.records[i] = {"prefix": i, "predicted_ms": pred, "speedup": 0.0,
                               "error": str(err)}
            return self.records[i]
        finally:
            snap.restore()
        dense_ms, ms = statistics.median(readings[0]), statistics.median(readings[1])
        rec = {"prefix": i, "predicted_ms": pred, "measured_ms": ms, "dense_ms": dense_ms,
               "speedup": dense_ms / ms, "calibrated": self.calibrated,
               "dense_rounds_ms": readings[0], "pruned_rounds_ms": readings[1],
               # the prediction's error, measured time rescaled to the model's dense time
               "prediction_error": pred / (ms * self.alloc.model.dense_ms / dense_ms) - 1}
        self.calibrated = True
        self.alloc.model.calibrate(self.alloc.widths(), ms * self.alloc.model.dense_ms
                                   / dense_ms)
        self.records[i] = rec
        return rec


def _check(model: Any, target: Any, levels: Any, max_ratio: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(target, bool) or not isinstance(target, Real) or not target > 1:
        raise ValueError(f"target_speedup must be a number > 1, got {target!r}")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an int >= 2, got {levels!r}")
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, Real) or \
            not 0 < max_ratio < 1:
        raise ValueError(f"max_ratio must be in (0, 1), got {max_ratio!r}")


def _first_at(search: _Search, goal_ms: float, lo: int = 0, hi: int | None = None) -> int:
    """First prefix in ``[lo, hi]`` whose prediction is ≤ goal_ms (``hi``, default the path
    end, if none)."""
    hi = len(search.path) if hi is None else hi
    for i in range(lo, hi + 1):
        if search.predicted(i) <= goal_ms:
            return i
    return hi


def _extend(search: _Search, target: float) -> None:
    """Run the greedy on past the path's end when the (re)calibrated model says the end is
    too slow for the target (the uncalibrated model was optimistic)."""
    lm = search.alloc.model
    end = len(search.path)
    if search.predicted(end) <= lm.dense_ms / target:
        return
    search.set_prefix(end)
    search.path.extend(greedy_path(search.alloc, lm.dense_ms / (target * OVERSHOOT)))


def _search_prefix(search: _Search, target: float, max_measurements: int, tol: float) -> int:
    """Measured search: the shortest prefix whose *measured* speedup reaches the target.

    Candidates are aimed at the middle of the acceptance window ``[target, target · (1 +
    tol)]`` (aiming at its lower edge lands below it half the time, by noise alone). The
    first is where the latency model predicts ``target · (1 + tol / 2)``; it is accepted at
    once when it measures inside the window. Otherwise the model is recalibrated on that
    measurement (its ``λ``); what calibration cannot absorb (``λ`` is capped so that the
    measured rest stays ≥ 0) is corrected by the residual ``r = predicted speedup /
    measured speedup`` of that candidate: the next one is where the model predicts
    ``aim · r`` — but no further than :func:`_capped` allows (a step bounded on the
    uncalibrated model, so one low reading cannot send the search to the path's end).
    Once a bracket of prefixes known too slow / fast enough exists, the next
    candidate is the secant between their *measurements* (:func:`_secant_ms`; the
    midpoint when that does not move), within ``max_measurements`` in all. Returns the shortest
    prefix measured ≥ target, else the fastest one measured.
    """
    lm = search.alloc.model
    aim = target * (1 + tol / 2)
    lo, hi = -1, None  # longest prefix measured too slow, shortest measured fast enough
    i = _first_at(search, lm.dense_ms / aim)
    while True:
        s = search.measure(i)["speedup"]
        if target <= s <= target * (1 + tol):
            return i
        goal = aim * (lm.dense_ms / search.predicted(i)) / max(s, 1e-9)  # aim · r
        if s >= target:
            hi = i if hi is None else min(hi, i)
        else:
            lo = max(lo, i)
            if hi is None:
                _extend(search, goal)
        top = len(search.path) if hi is None else hi - 1
        if len(search.records) >= max_measurements or lo + 1 > top:
            break
        goal_ms = lm.dense_ms / goal if hi is None else _secant_ms(search, lo, hi, aim)
        j = _first_at(search, goal_ms, lo + 1, top)
        if hi is None:
            j = min(j, _capped(search, lo, aim, top))
        if j in search.records:
            j = (lo + 1 + top) // 2  # the prediction did not move: bisect
        if j in search.records:
            break
        i = j
    if hi is not None:
        return hi
    return max(search.records, key=lambda k: search.records[k]["speedup"])


def _capped(search: _Search, lo: int, aim: float, top: int) -> int:
    """The furthest prefix an unbracketed step may reach from ``lo`` (measured too slow).

    A candidate that reads much slower than predicted drives the calibrated ``λ`` to its
    floor; the model then says no prefix reaches the goal and the next candidate would be
    the path's end, every group at its floor (in a batch-1 ResNet-50 depth+width run a
    width step aimed at 1.22× measured 16×). So the step is bounded on the model *as built*
    (uncalibrated speedups ``p``): the next prefix may promise at most ``p_lo · min(
    STEP_MARGIN · aim / s_lo, MAX_STEP)`` — the speedup still missing, with a margin —
    or ``p_lo · BLIND_STEP`` when ``lo`` measured no faster than dense."""
    s_lo = search.records[lo]["speedup"]
    factor = BLIND_STEP if s_lo <= 1.0 else min(STEP_MARGIN * aim / s_lo, MAX_STEP)
    cap = search.prior_speedup(lo) * max(factor, 1.0)
    over = next((k for k in range(lo + 1, top + 1) if search.prior_speedup(k) > cap), top + 1)
    return min(max(over - 1, lo + 1), top)


def _secant_ms(search: _Search, lo: int, hi: int, aim: float) -> float:
    """Predicted latency to aim at inside a measured bracket: interpolate the measured
    relative times ``1/s`` of prefixes ``lo`` (too slow; prefix 0 is 1.0) and ``hi`` (fast
    enough) to ``1/aim``, on the model's predicted-latency axis between them (a secant:
    trusts the measurements, not the model's absolute error)."""
    s_lo = search.records[lo]["speedup"] if lo >= 0 else 1.0
    s_hi = search.records[hi]["speedup"]
    p_lo, p_hi = search.predicted(max(lo, 0)), search.predicted(hi)
    m_lo, m_hi = 1.0 / max(s_lo, 1e-9), 1.0 / max(s_hi, 1e-9)
    frac = min(1.0, max(0.0, (m_lo - 1.0 / aim) / (m_lo - m_hi))) if m_lo > m_hi else 0.5
    return p_lo - frac * (p_lo - p_hi)


def _refine(search: _Search, best: int, target: float, tol: float,
            budget: int) -> tuple[_Search, int]:
    """When the last step overshoots (speedup > target · (1 + tol)), split it into every
    aligned width in between and bisect those by measurement."""
    rec = search.records.get(best)
    if not best or rec is None or not target * (1 + tol) < rec["speedup"]:
        return search, best
    gid, level, _ = search.path[best - 1]
    added = refine(search.alloc.ladders[gid], level)
    if not added:
        return search, best
    path = search.path[:best - 1] + [(gid, level - 1 + j, math.nan)
                                     for j in range(1, added + 2)]
    fine = dataclasses.replace(search, path=path, records={})
    lo, hi = best - 1, best + added
    fine.records[hi] = {**rec, "prefix": hi}
    while hi - lo > 1 and budget > 0:
        mid, budget = (lo + hi) // 2, budget - 1
        if fine.measure(mid)["speedup"] >= target:
            hi = mid
        else:
            lo = mid
    return fine, hi


def _excluded(model: nn.Module, gs: GroupSet, alloc: Allocation, x: Any,
              configs: str = "strict") -> list[dict]:
    """Groups whose first step breaks the forward pass or the value check."""
    first = {gid: 1 for gid, lad in alloc.ladders.items() if len(lad.levels) > 1}
    alloc.level.update(first)
    removal = alloc.removal()
    alloc.level.update(dict.fromkeys(first, 0))
    return breaking_groups(model, gs, removal, x, configs=configs)


def prune_to_speedup(
    model: nn.Module,
    example_inputs: Any,
    target_speedup: float,
    device: str = "cpu",
    threads: int | None = 2,
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    importance: Any = "l2",
    ignore: Iterable[Any] = (),
    round_to: int | None = None,
    levels: int = 8,
    min_keep: int = 1,
    max_ratio: float = 0.9,
    calibration: Any = None,
    latency_fn: LatencyFn | None = None,
    layer_timer: LayerTimer | None = None,
    max_measurements: int = 4,
    refine_measurements: int = 2,
    rounds: int = 2,
    repeats: int = 3,
    min_timing_ms: float = 200.0,
    verify_rounds: int = 0,
    tolerance: float = 0.1,
    use_cache: bool = True,
    progress: Callable[[str], None] | None = None,
    configs: str = "strict",
) -> PruneResult:
    """Prune ``model`` in place until it is *measured* ``target_speedup``× faster on a device.

    Parameters
    ----------
    model, example_inputs
        As for :func:`prunekit.prune` (the inputs trace the model and check every cut).
    target_speedup
        Wanted ``dense latency / pruned latency`` (> 1), measured on ``device``.
    device, threads, dtype, channels_last
        How the model will run (:class:`DeviceSpec`): timing and caches use exactly this.
    batch_size
        Batch size to time at (the example inputs are repeated); default: theirs.
    importance, ignore, calibration
        As for :func:`prunekit.prune` (what to keep; modules left whole).
    round_to
        Channel multiple for kept widths; default: the cached width probe's answer.
    levels
        About how many widths each group's ladder has (finer = more timings).
    min_keep, max_ratio
        Every group keeps at least ``min_keep`` channels and loses at most ``max_ratio``.
    latency_fn, layer_timer
        ``latency_fn(model) -> ms`` for whole models and ``layer_timer(layer, cin, cout)``
        for layers; default: measured on the device (a model timing is the median of
        ``repeats`` runs after one warm-up). Injected in tests.
    max_measurements, refine_measurements, rounds, tolerance
        Budget of measured candidates (and of extra ones to split a last step that
        overshoots the target by more than ``tolerance``); alternating (ABBA) timing rounds
        per measurement; a candidate within ``[target, target · (1 + tolerance)]`` is
        accepted at once (usually the first one, where the latency model predicts the
        target).
    min_timing_ms
        CPU: a model timing takes at least ``repeats`` runs and at least this many
        milliseconds of runs (at most 50): fast models are timed more often, so a 15 ms
        MobileNet at batch 1 is not judged on 3 samples.
    verify_rounds
        ABBA rounds to time the returned plan once more (0: the search's own measurement of
        exactly that plan is the verification).
    use_cache
        Read/write probe and layer timings under ``$PRUNEKIT_CACHE``.
    progress
        Called with a short message at each stage (e.g. ``print``).
    configs
        As for :func:`prunekit.prune`: ``"strict"`` leaves out of the search the groups
        whose cut a Hugging Face config cannot describe; ``"warn"`` keeps them.

    Returns
    -------
    PruneResult
        As :func:`prunekit.prune` returns it; ``result.speedup`` (a
        :class:`~prunekit.result.SpeedupResult`) holds what was measured: ``met`` is False
        when the target was out of reach (the fastest measured plan is returned) or when
        even that was not faster than dense (nothing is cut then; ``notes`` say why);
        ``stages`` has the seconds spent per stage; ``search`` every measured candidate.
    """
    _check(model, target_speedup, levels, max_ratio)
    say = progress or (lambda msg: None)
    clock = _Stages()
    spec = DeviceSpec(device, threads, dtype, channels_last)
    timing_inputs = with_batch(example_inputs, batch_size)
    latency_fn = latency_fn or model_latency_fn(timing_inputs, spec, warmup=1, repeats=repeats,
                                                min_total_ms=min_timing_ms)
    say("tracing groups and scoring channels")
    gs = build_groups(model, example_inputs, ignore)
    from prunekit.importance import ImportanceContext, score_groups
    from prunekit.measure import count_macs, count_params

    macs0, params0 = count_macs(model, example_inputs), count_params(model)
    groups = [g for g in gs.groups if g.prunable and g.size > 1]
    scores = score_groups(model, groups, importance, calibration or ImportanceContext())
    clock.mark("trace_score")
    if round_to is None:
        say("probing which channel multiples run fast on the device (cached)")
    multiple = round_to or probe_widths(spec, use_cache=use_cache).multiple
    dense = copy.deepcopy(model)
    clock.mark("probe")
    say(f"measuring the dense model (width multiple {multiple})")
    lm = LatencyModel.build(model, timing_inputs, spec, latency_fn(dense), layer_timer,
                            use_cache)
    clock.mark("dense_timing")
    say("greedy allocation by importance per predicted millisecond (layers timed on demand)")
    alloc, bad = _allocation(model, gs, groups, scores, lm, multiple, example_inputs,
                             (min_keep, max_ratio, levels), configs)
    path = greedy_path(alloc, lm.dense_ms / (target_speedup * OVERSHOOT))
    clock.mark("allocation")
    search = _Search(model, dense, gs, alloc, path, example_inputs, latency_fn, rounds)
    say(f"measured search along a path of {len(path)} steps")
    best = _search_prefix(search, float(target_speedup), max_measurements, tolerance)
    coarse = [search.records[k] for k in sorted(search.records)]
    search, best = _refine(search, best, float(target_speedup), tolerance, refine_measurements)
    fine = [{**search.records[k], "refined": True} for k in sorted(search.records)
            if search.records[k] not in coarse]
    clock.mark("search")
    result = _finish(search, best, float(target_speedup), verify_rounds, say)
    clock.mark("finish")
    result.skipped = gs.skipped + bad
    result.plans = [result.plan]  # what prunekit.save(model, path, plan=result.plans) keeps
    result.macs_before, result.params_before = macs0, params0
    result.macs_after = count_macs(model, example_inputs)
    result.params_after = count_params(model)
    measured = result.speedup
    measured.search = coarse + fine
    measured.mac_reduction = result.mac_reduction
    measured.multiple, measured.device = multiple, device_signature(spec)
    measured.model_dense_ms = lm.dense_ms
    measured.layer_timings = lm.timed
    lm.flush()
    measured.stages, measured.seconds = clock.stages, clock.total()
    say(target_line(result))
    return result


@dataclass
class _Stages:
    """Seconds per stage of :func:`prune_to_speedup` (``mark`` closes the current one)."""

    start: float = field(default_factory=time.perf_counter)
    last: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = now - (self.last or self.start)
        self.last = now

    def total(self) -> float:
        return time.perf_counter() - self.start


def _allocation(model: nn.Module, gs: GroupSet, groups: list, scores: dict,
                lm: LatencyModel, multiple: int, x: Any,
                limits: tuple[int, float, int], configs: str = "strict"
                ) -> tuple[Allocation, list[dict]]:
    """Ladders of every prunable group (minus those whose first cut breaks the model)."""
    min_keep, max_ratio, levels = limits
    weights = {la.weight for la in lm.layers}
    lower = {g.id: max(min_keep, math.ceil((1 - max_ratio) * g.size - 1e-9)) for g in groups}
    ladders = {g.id: make_ladder(g, scores[g.id], weights, multiple, min(lower[g.id], g.size),
                                 levels) for g in groups}
    alloc = Allocation(lm, {k: v for k, v in ladders.items() if len(v.levels) > 1})
    bad = _excluded(model, gs, alloc, x, configs)
    alloc = Allocation(lm, {k: v for k, v in alloc.ladders.items()
                            if k not in {b["group"] for b in bad}})
    return alloc, bad


def _finish(search: _Search, best: int, target: float, verify_rounds: int,
            say: Callable[[str], None]) -> PruneResult:
    """Cut prefix ``best`` for good and report its measurement; back off if not faster.

    The search already timed exactly this plan against the dense model in alternating
    rounds; that measurement is the verification (``verify_rounds > 0`` times it again).
    A plan that did not measure faster than dense is never returned: nothing is cut then.
    """
    rec = search.records.get(best)
    # the prediction made before the plan was measured (not the one calibrated on it)
    pred = rec["predicted_ms"] if rec else search.predicted(best)
    search.set_prefix(best)
    lm = search.alloc.model
    base = {"target_speedup": target, "predicted_ms": pred,
            "search": [search.records[k] for k in sorted(search.records)]}
    if best == 0 or rec is None or rec["speedup"] <= 1.0:
        note = ("no step of the path saves measured time; the model is returned unpruned"
                if best == 0 or rec is None else
                f"backed off: the best plan measured {rec['speedup']:.3f}x, not faster than "
                "dense; the model is returned unpruned")
        dense_ms = rec["dense_ms"] if rec and "dense_ms" in rec else lm.dense_ms
        return PruneResult(search.model, Plan(groups={}), [], 0, 0, 0, 0, search.gs,
                           notes=[note], speedup=SpeedupResult(dense_ms=dense_ms,
                                                               pruned_ms=dense_ms, **base))
    snap = Snapshot.take(search.model)
    plan = remove_channels(search.model, search.gs, search.alloc.removal(), search.inputs)
    dense_ms, ms = rec["dense_ms"], rec["measured_ms"]
    notes: list[str] = []
    if verify_rounds:
        say("verifying the pruned model against the dense one")
        dense_ms, ms = paired_latency(search.dense, search.model, search.latency_fn,
                                      verify_rounds)
        if ms >= dense_ms:
            snap.restore()
            notes.append(f"backed off: the best plan measured {dense_ms / ms:.3f}x in "
                         "verification, not faster than dense; the model is returned unpruned")
            plan, ms = Plan(groups={}), dense_ms
    speedup = dense_ms / ms
    if speedup < target:
        notes.append(f"target {target:g}x not met: best measured {speedup:.3f}x (path of "
                     f"{len(search.path)} steps; the rest is in layers that cannot be cut "
                     "further or in time outside the prunable layers)")
    return PruneResult(search.model, plan, [], 0, 0, 0, 0, search.gs, notes=notes,
                       speedup=SpeedupResult(measured_speedup=speedup, dense_ms=dense_ms,
                                             pruned_ms=ms, met=speedup >= target, **base))
