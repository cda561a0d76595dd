"""Dense vs pruned, measured side by side: ``compare(dense, pruned, inputs) -> Comparison``.

Ratios are "dense ÷ pruned" so that larger is better, except accuracy retention
(pruned ÷ dense):

* ``compression_ratio = params_dense / params_pruned``
* ``mac_speedup_theoretical = MACs_dense / MACs_pruned`` — *theory*, a count, not a timing
* ``measured_speedup = median_latency_dense / median_latency_pruned`` — timed here, with
  ``speedup_interval``, a 95 % bootstrap interval of that ratio: a speedup whose interval
  contains 1 is "no measurable difference", never a speedup
* ``rho = measured_speedup / mac_speedup_theoretical`` — realized efficiency ratio
  (ρ ≈ 1: the removed MACs turned into time; ρ ≪ 1: they did not)
* ``memory_ratio = (weights + peak)_dense / (weights + peak)_pruned``
* ``energy_ratio = J_dense / J_pruned`` per inference, or ``None`` with the reason
* ``accuracy_retention = score_pruned / score_dense`` from ``eval_fn``

Latencies are measured in alternating rounds (dense, pruned, pruned, dense, …) so that a
noisy neighbour on a shared machine slows both models alike. When either side's spread
(IQR / median) is above ``max_spread`` or its samples are bimodal, two more rounds are
timed, until both are stable or a cap (rounds, seconds of timed passes) is reached;
``timing_stable`` and the latency notes say which. Every sample is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from prunekit.inputs import Inputs
from prunekit.measure.counting import count_macs, count_params, model_bytes
from prunekit.measure.devices import validate_device
from prunekit.measure.display import speedup_verdict
from prunekit.measure.energy_meter import EnergyStats, energy
from prunekit.measure.machine import machine_info
from prunekit.measure.memory import MemoryStats, peak_memory
from prunekit.measure.timing import (
    STABLE_SPREAD,
    LatencyStats,
    Timer,
    latency,
    merge_latency,
    unstable_note,
)

EvalFn = Callable[[nn.Module], float]


def accuracy_retention(dense_score: float, pruned_score: float) -> float:
    """``pruned_score / dense_score`` (1.0 = nothing lost); scores must be "higher is better"."""
    if not dense_score > 0:
        raise ValueError(f"dense_score must be positive to form a retention, got {dense_score}")
    return float(pruned_score) / float(dense_score)


def speedup_interval(dense_ms: Sequence[float], pruned_ms: Sequence[float],
                     confidence: float = 0.95, resamples: int = 2000,
                     seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of ``median(dense_ms) / median(pruned_ms)``.

    Each side's samples are resampled with replacement ``resamples`` times (seeded: the
    same samples always give the same interval) and the ``(1 ± confidence) / 2`` quantiles
    of the ratio of medians are returned.
    """
    if not len(dense_ms) or not len(pruned_ms):
        raise ValueError("speedup_interval needs samples on both sides")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    rng = np.random.default_rng(seed)
    medians = []
    for side in (np.asarray(dense_ms, float), np.asarray(pruned_ms, float)):
        picks = rng.integers(0, len(side), size=(resamples, len(side)))
        medians.append(np.median(side[picks], axis=1))
    ratios = medians[0] / np.maximum(medians[1], 1e-12)
    lo, hi = np.quantile(ratios, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


@dataclass
class Comparison:
    """Everything measured about a dense/pruned pair; see the module docstring for ratios."""

    params_dense: int
    params_pruned: int
    macs_dense: int
    macs_pruned: int
    bytes_dense: int
    bytes_pruned: int
    latency_dense: LatencyStats
    latency_pruned: LatencyStats
    memory_dense: MemoryStats | None = None
    memory_pruned: MemoryStats | None = None
    energy_dense: EnergyStats | None = None
    energy_pruned: EnergyStats | None = None
    accuracy_dense: float | None = None
    accuracy_pruned: float | None = None
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def compression_ratio(self) -> float | None:
        return _ratio(self.params_dense, self.params_pruned)

    @property
    def mac_speedup_theoretical(self) -> float | None:
        return _ratio(self.macs_dense, self.macs_pruned)

    @property
    def measured_speedup(self) -> float | None:
        return _ratio(self.latency_dense.median_ms, self.latency_pruned.median_ms)

    @property
    def speedup_interval(self) -> tuple[float, float] | None:
        """95 % bootstrap interval of ``measured_speedup`` (:func:`speedup_interval`)."""
        dense, pruned = self.latency_dense.samples_ms, self.latency_pruned.samples_ms
        return speedup_interval(dense, pruned) if dense and pruned else None

    @property
    def speedup_verdict(self) -> str:
        """``"faster"``, ``"slower"`` or ``"no measurable difference"`` (interval holds 1)."""
        return speedup_verdict(self.measured_speedup, self.speedup_interval)

    @property
    def timing_stable(self) -> bool:
        """Both timings within their spread bound and neither bimodal."""
        return self.latency_dense.stable and self.latency_pruned.stable

    @property
    def rho(self) -> float | None:
        return _ratio(self.measured_speedup, self.mac_speedup_theoretical)

    @property
    def rho_interval(self) -> tuple[float, float] | None:
        """``speedup_interval`` divided by the MAC ratio."""
        interval, macs = self.speedup_interval, self.mac_speedup_theoretical
        return None if interval is None or not macs else (interval[0] / macs,
                                                          interval[1] / macs)

    @property
    def memory_ratio(self) -> float | None:
        dense, pruned = self.memory_dense, self.memory_pruned
        return _ratio(dense and dense.total_bytes, pruned and pruned.total_bytes)

    @property
    def energy_ratio(self) -> float | None:
        dense, pruned = self.energy_dense, self.energy_pruned
        return _ratio(dense and dense.joules_per_inference, pruned and pruned.joules_per_inference)

    @property
    def energy_source(self) -> str:
        return self.energy_dense.source if self.energy_dense else "not measured"

    @property
    def accuracy_retention(self) -> float | None:
        if self.accuracy_dense is None or self.accuracy_pruned is None:
            return None
        return accuracy_retention(self.accuracy_dense, self.accuracy_pruned)

    def ratios(self) -> dict[str, float | None]:
        """The headline ratios, by name."""
        return {name: getattr(self, name) for name in RATIO_NAMES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: raw fields, the ratios, and labels saying which numbers are theory."""
        raw = asdict(self)
        for name in ("latency_dense", "latency_pruned", "memory_dense", "memory_pruned",
                     "energy_dense", "energy_pruned"):
            stats = getattr(self, name)
            raw[name] = None if stats is None else stats.to_dict()
        interval, rho = self.speedup_interval, self.rho_interval
        return {**raw, **self.ratios(), "energy_source": self.energy_source,
                "measured_speedup_interval": None if interval is None else list(interval),
                "rho_interval": None if rho is None else list(rho),
                "speedup_verdict": self.speedup_verdict, "timing_stable": self.timing_stable,
                "labels": LABELS}


RATIO_NAMES = ("compression_ratio", "mac_speedup_theoretical", "measured_speedup", "rho",
               "memory_ratio", "energy_ratio", "accuracy_retention")
LABELS = {
    "mac_speedup_theoretical": "theory: ratio of counted MACs, not a timing",
    "measured_speedup": "measured: ratio of median latencies on this machine",
    "measured_speedup_interval": "95 % bootstrap interval of the measured speedup",
    "rho": "measured speedup / theoretical MAC speedup",
}


@dataclass
class Retiming:
    """When :func:`compare` times more rounds: while either side's IQR / median exceeds
    ``max_spread`` (or is bimodal), two more alternating rounds, up to ``max_rounds`` in all
    (default 3 × the first rounds) and no more once ``max_seconds`` were spent timing
    (warm-ups included). ``max_spread=None`` times exactly the first rounds."""

    max_spread: float | None = STABLE_SPREAD
    max_rounds: int | None = None
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_spread is not None and (isinstance(self.max_spread, bool) or not isinstance(
                self.max_spread, int | float) or not self.max_spread > 0):
            raise ValueError(f"max_spread must be a positive number or None, got "
                             f"{self.max_spread!r}")
        if self.max_rounds is not None and (isinstance(self.max_rounds, bool) or not isinstance(
                self.max_rounds, int) or self.max_rounds < 1):
            raise ValueError(f"max_rounds must be a positive integer or None, got "
                             f"{self.max_rounds!r}")
        if isinstance(self.max_seconds, bool) or not isinstance(self.max_seconds, int | float) \
                or not 0 < self.max_seconds < float("inf"):
            raise ValueError(f"max_seconds must be a positive number, got {self.max_seconds!r}")


def _interleaved_latency(dense: nn.Module, pruned: nn.Module, inputs: Inputs, rounds: int,
                         retiming: Retiming, progress: bool | None = None,
                         warmup: int = 5, timer: Timer = time.perf_counter,
                         **kwargs: Any) -> tuple[LatencyStats, LatencyStats]:
    """Alternate dense/pruned measurement blocks (ABBA order), re-timing while unstable, and
    merge each side's samples. The first block of each model runs ``warmup`` untimed
    passes, later blocks one (the model was just run)."""
    from prunekit.progress import task

    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    cap = max(rounds, retiming.max_rounds or 3 * rounds)
    bound = STABLE_SPREAD if retiming.max_spread is None else retiming.max_spread
    parts: dict[int, list[LatencyStats]] = {0: [], 1: []}
    models, start = (dense, pruned), timer()
    with task("timing dense vs pruned (alternating rounds)", rounds, progress) as bar:
        r, planned = 0, rounds
        while r < planned:
            for side in ((0, 1) if r % 2 == 0 else (1, 0)):
                parts[side].append(latency(models[side], inputs, warmup=warmup if r == 0 else
                                           min(warmup, 1), timer=timer, **kwargs))
            r += 1
            bar.advance()
            if r == planned and _retime(parts, bound, retiming, r, cap, timer() - start):
                planned = min(cap, r + 2)
                bar.update(total=planned, description="timing dense vs pruned (re-timing: "
                                                      "spread above bound)")
    merged = merge_latency(parts[0], bound), merge_latency(parts[1], bound)
    if retiming.max_spread is not None:
        for stats in merged:
            if note := unstable_note(stats, f"{r} rounds, cap {cap} rounds / "
                                            f"{retiming.max_seconds:g} s"):
                stats.notes.append(note)
    return merged


def _retime(parts: dict[int, list[LatencyStats]], bound: float, retiming: Retiming,
            done: int, cap: int, seconds: float) -> bool:
    """More rounds wanted: re-timing on, a side unstable, neither cap (rounds; seconds spent
    timing, warm-ups included) reached."""
    if retiming.max_spread is None or done >= cap or seconds >= retiming.max_seconds:
        return False
    return not all(merge_latency(side, bound).stable for side in parts.values())


def compare(
    dense: nn.Module,
    pruned: nn.Module,
    inputs: Inputs,
    eval_fn: EvalFn | None = None,
    device: str | torch.device = "cpu",
    threads: int | None = 2,
    warmup: int = 5,
    repeats: int = 30,
    rounds: int = 4,
    measure_memory: bool = True,
    measure_energy: bool = True,
    energy_seconds: float = 2.0,
    max_spread: float | None = STABLE_SPREAD,
    max_rounds: int | None = None,
    max_seconds: float = 30.0,
    progress: bool | None = None,
    timer: Timer = time.perf_counter,
) -> Comparison:
    """Count, time and (optionally) evaluate ``dense`` and ``pruned`` on the same inputs.

    Parameters
    ----------
    eval_fn
        ``eval_fn(model) -> score`` with higher = better (e.g. accuracy); gives accuracy
        retention. Not called when ``None``.
    repeats, rounds
        ``repeats`` timed passes per model in total, split over ``rounds`` alternating
        blocks.
    max_spread, max_rounds, max_seconds
        Re-timing (:class:`Retiming`): while either side's IQR / median is above
        ``max_spread`` or its samples are bimodal, time two more rounds, up to
        ``max_rounds`` rounds (default ``3 · rounds``), starting none after ``max_seconds``
        spent timing.
        ``max_spread=None``: exactly ``rounds`` rounds. Whether the bound was reached is in
        ``timing_stable`` and the latency ``notes``.
    measure_energy
        Read NVML/RAPL over ``energy_seconds`` per model when a counter is readable;
        otherwise the energy fields say why they are empty.
    progress
        A bar over the timing rounds on stderr (None: on a terminal, or as an enclosing
        :func:`prunekit.progress.showing` says; False: silent).
    timer
        Clock for CPU samples (seconds; injected in tests).
    """
    from prunekit.progress import stage

    validate_device(device)  # a typo or a missing GPU: ValueError before any timing
    retiming = Retiming(max_spread, max_rounds, max_seconds)
    per_round = max(1, repeats // rounds) if isinstance(rounds, int) and rounds > 0 else 1
    lat_dense, lat_pruned = _interleaved_latency(
        dense, pruned, inputs, rounds, retiming, progress, device=device, threads=threads,
        warmup=warmup, repeats=per_round, timer=timer,
    )
    result = Comparison(
        params_dense=count_params(dense), params_pruned=count_params(pruned),
        macs_dense=count_macs(dense, inputs), macs_pruned=count_macs(pruned, inputs),
        bytes_dense=model_bytes(dense), bytes_pruned=model_bytes(pruned),
        latency_dense=lat_dense, latency_pruned=lat_pruned, machine=machine_info(),
    )
    if measure_memory:
        with stage("peak memory, dense and pruned", progress):
            result.memory_dense = peak_memory(dense, inputs, device)
            result.memory_pruned = peak_memory(pruned, inputs, device)
    if measure_energy:
        with stage("energy, dense and pruned", progress):
            result.energy_dense = energy(dense, inputs, device, threads, energy_seconds)
            result.energy_pruned = energy(pruned, inputs, device, threads, energy_seconds)
    if eval_fn is not None:
        with stage("accuracy, dense and pruned", progress):
            result.accuracy_dense = float(eval_fn(dense))
            result.accuracy_pruned = float(eval_fn(pruned))
    return result
