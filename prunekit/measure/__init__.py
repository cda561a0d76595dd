"""Honest measurement: parameters, MACs, bytes, latency, memory, energy and ``compare``.

Every speed number here is measured on the machine that runs it; MAC ratios are theory
and are labeled as such (see docs/measure.md).
"""

from prunekit.measure.comparison import Comparison, accuracy_retention, compare
from prunekit.measure.counting import (
    MacProfile,
    count_macs,
    count_params,
    mac_profile,
    macs_by_module,
    model_bytes,
    params_by_module,
    register_mac_formula,
)
from prunekit.measure.energy_meter import EnergyStats, energy
from prunekit.measure.machine import machine_info
from prunekit.measure.memory import MemoryStats, peak_memory
from prunekit.measure.timing import LatencyStats, ThroughputStats, latency, throughput

__all__ = [
    "Comparison",
    "EnergyStats",
    "LatencyStats",
    "MacProfile",
    "MemoryStats",
    "ThroughputStats",
    "accuracy_retention",
    "compare",
    "count_macs",
    "count_params",
    "energy",
    "latency",
    "mac_profile",
    "machine_info",
    "macs_by_module",
    "model_bytes",
    "params_by_module",
    "peak_memory",
    "register_mac_formula",
    "throughput",
]
