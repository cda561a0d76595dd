"""Dense vs pruned, measured side by side: ``compare(dense, pruned, inputs) -> Comparison``.

Ratios are "dense ÷ pruned" so that larger is better, except accuracy retention
(pruned ÷ dense):

* ``compression_ratio = params_dense / params_pruned``
* ``mac_speedup_theoretical = MACs_dense / MACs_pruned`` — *theory*, a count, not a timing
* ``measured_speedup = median_latency_dense / median_latency_pruned`` — timed here
* ``rho = measured_speedup / mac_speedup_theoretical`` — realized efficiency ratio
  (ρ ≈ 1: the removed MACs turned into time; ρ ≪ 1: they did not)
* ``memory_ratio = (weights + peak)_dense / (weights + peak)_pruned``
* ``energy_ratio = J_dense / J_pruned`` per inference, or ``None`` with the reason
* ``accuracy_retention = score_pruned / score_dense`` from ``eval_fn``

Latencies are measured in alternating rounds (dense, pruned, pruned, dense, …) so that a
noisy neighbour on a shared machine slows both models alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.measure._inputs import Inputs
from prunekit.measure.counting import count_macs, count_params, model_bytes
from prunekit.measure.devices import validate_device
from prunekit.measure.energy_meter import EnergyStats, energy
from prunekit.measure.machine import machine_info
from prunekit.measure.memory import MemoryStats, peak_memory
from prunekit.measure.timing import LatencyStats, latency, merge_latency

EvalFn = Callable[[nn.Module], float]


def accuracy_retention(dense_score: float, pruned_score: float) -> float:
    """``pruned_score / dense_score`` (1.0 = nothing lost); scores must be "higher is better"."""
    if not dense_score > 0:
        raise ValueError(f"dense_score must be positive to form a retention, got {dense_score}")
    return float(pruned_score) / float(dense_score)


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
    def rho(self) -> float | None:
        return _ratio(self.measured_speedup, self.mac_speedup_theoretical)

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
        return {**raw, **self.ratios(), "energy_source": self.energy_source, "labels": LABELS}


RATIO_NAMES = ("compression_ratio", "mac_speedup_theoretical", "measured_speedup", "rho",
               "memory_ratio", "energy_ratio", "accuracy_retention")
LABELS = {
    "mac_speedup_theoretical": "theory: ratio of counted MACs, not a timing",
    "measured_speedup": "measured: ratio of median latencies on this machine",
    "rho": "measured speedup / theoretical MAC speedup",
}


def _interleaved_latency(dense: nn.Module, pruned: nn.Module, inputs: Inputs, rounds: int,
                         **kwargs: Any) -> tuple[LatencyStats, LatencyStats]:
    """Alternate dense/pruned measurement blocks (ABBA order) and merge each side's samples."""
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    parts: dict[int, list[LatencyStats]] = {0: [], 1: []}
    models = (dense, pruned)
    for r in range(rounds):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            parts[side].append(latency(models[side], inputs, **kwargs))
    return merge_latency(parts[0]), merge_latency(parts[1])


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
    measure_energy
        Read NVML/RAPL over ``energy_seconds`` per model when a counter is readable;
        otherwise the energy fields say why they are empty.
    """
    validate_device(device)  # a typo or a missing GPU: ValueError before any timing
    per_round = max(1, repeats // rounds)
    lat_dense, lat_pruned = _interleaved_latency(
        dense, pruned, inputs, rounds, device=device, threads=threads, warmup=warmup,
        repeats=per_round,
    )
    result = Comparison(
        params_dense=count_params(dense), params_pruned=count_params(pruned),
        macs_dense=count_macs(dense, inputs), macs_pruned=count_macs(pruned, inputs),
        bytes_dense=model_bytes(dense), bytes_pruned=model_bytes(pruned),
        latency_dense=lat_dense, latency_pruned=lat_pruned, machine=machine_info(),
    )
    if measure_memory:
        result.memory_dense = peak_memory(dense, inputs, device)
        result.memory_pruned = peak_memory(pruned, inputs, device)
    if measure_energy:
        result.energy_dense = energy(dense, inputs, device, threads, energy_seconds)
        result.energy_pruned = energy(pruned, inputs, device, threads, energy_seconds)
    if eval_fn is not None:
        result.accuracy_dense = float(eval_fn(dense))
        result.accuracy_pruned = float(eval_fn(pruned))
    return result
