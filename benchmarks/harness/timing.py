"""Paired ABBA timing of two or more models, every reading kept.

Built on :func:`prunekit.measure.latency` (the project's one timer: pinned threads,
``perf_counter`` per pass on CPU, CUDA events on GPU). Models are timed in rounds whose
order alternates (A B C, then C B A, ...), so that load drifting on a shared machine
slows every model alike. Every timed pass of every round is kept; summaries are the
median and the spread (interquartile range over all passes, and the range of the
per-round medians), never the best reading. Speedups are ratios of medians, with the
range of the per-round ratios as their spread.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from benchmarks.harness.tables import summary
from prunekit.measure import LatencyStats, latency


@dataclass
class Readings:
    """Every round's :class:`LatencyStats` of one model."""

    name: str
    rounds: list[LatencyStats] = field(default_factory=list)

    @property
    def samples_ms(self) -> list[float]:
        return [s for r in self.rounds for s in r.samples_ms]

    @property
    def round_medians_ms(self) -> list[float]:
        return [r.median_ms for r in self.rounds]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "summary_ms": summary(self.samples_ms),
                "round_medians_ms": self.round_medians_ms,
                "samples_ms": [list(r.samples_ms) for r in self.rounds]}


@dataclass
class PairedTiming:
    """The readings of every model and the order they were taken in."""

    readings: dict[str, Readings]
    order: list[list[str]]
    config: dict[str, Any]

    def median_ms(self, name: str) -> float:
        return self.readings[name].median_ms

    def speedup(self, base: str, other: str) -> dict[str, Any]:
        """``median(base) / median(other)`` and the per-round ratios (paired by round)."""
        per_round = [b / o for b, o in zip(self.readings[base].round_medians_ms,
                                           self.readings[other].round_medians_ms, strict=True)]
        return {"speedup": self.median_ms(base) / self.median_ms(other),
                "round_ratios": per_round, "min": min(per_round), "max": max(per_round)}

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "order": self.order,
                "models": {k: r.to_dict() for k, r in self.readings.items()}}


def paired(models: Mapping[str, nn.Module], inputs: Any, rounds: int = 4, repeats: int = 10,
           warmup: int = 2, device: str = "cpu", threads: int | None = 1, spec: Any = None,
           min_total_ms: float = 0.0, max_repeats: int = 200) -> PairedTiming:
    """Time every model in ``models`` for ``rounds`` alternating rounds.

    Parameters
    ----------
    models, inputs
        Models by name (left untouched: placed copies are timed) and their inputs.
    rounds, repeats, warmup
        Rounds (order reversed every other round), timed passes and untimed warm-up
        passes per model per round.
    device, threads
        Where and with how many CPU threads (ignored when ``spec`` is given).
    spec
        A :class:`prunekit.hardware.DeviceSpec` (device, threads, dtype, channels_last):
        models and inputs are placed that way first.
    min_total_ms
        CPU only: a model whose pass is fast gets more passes per round, so that each
        round holds at least this many milliseconds of passes (at most ``max_repeats``).
    """
    if not models or len(set(models)) != len(models):
        raise ValueError("paired needs at least one model, with distinct names")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    placed, args = _place(models, inputs, device, threads, spec)
    counts = {n: _repeats(m, args, repeats, min_total_ms, max_repeats)
              for n, m in placed.items()}
    readings = {n: Readings(n) for n in placed}
    order = []
    for r in range(rounds):
        names = list(placed) if r % 2 == 0 else list(reversed(placed))
        order.append(names)
        for n in names:
            readings[n].rounds.append(latency(placed[n], args["inputs"], device=args["device"],
                                              threads=args["threads"], warmup=warmup,
                                              repeats=counts[n]))
    config = {"rounds": rounds, "repeats": counts, "warmup": warmup, "device": args["device"],
              "threads": args["threads"], "spec": _spec_dict(spec),
              "min_total_ms": min_total_ms, "timer": "prunekit.measure.latency"}
    return PairedTiming(readings, order, config)


def _place(models: Mapping[str, nn.Module], inputs: Any, device: str, threads: int | None,
           spec: Any) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    if spec is None:
        return {n: m.eval() for n, m in models.items()}, {
            "inputs": inputs, "device": device, "threads": threads}
    from prunekit.hardware.timing import place_inputs, place_module

    placed = {n: place_module(m.eval(), spec) for n, m in models.items()}
    return placed, {"inputs": place_inputs(inputs, spec), "device": spec.device,
                    "threads": spec.threads}


def _repeats(model: nn.Module, args: dict[str, Any], repeats: int, min_total_ms: float,
             max_repeats: int) -> int:
    """``repeats``, or more for a fast model so a round lasts ``min_total_ms`` (CPU)."""
    if min_total_ms <= 0 or not str(args["device"]).startswith("cpu"):
        return repeats
    one = latency(model, args["inputs"], device=args["device"], threads=args["threads"],
                  warmup=1, repeats=1).median_ms
    return max(repeats, min(max_repeats, math.ceil(min_total_ms / max(one, 1e-6))))


def _spec_dict(spec: Any) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {"device": spec.device, "threads": spec.threads, "dtype": str(spec.dtype),
            "channels_last": spec.channels_last}
