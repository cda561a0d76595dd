"""Energy per inference from hardware counters — or ``None``, labeled with why.

* NVIDIA GPUs: NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
  millijoules since driver load; Volta and newer) through ``pynvml`` when it is installed.
* CPUs: Intel/AMD RAPL package counters ``/sys/class/powercap/intel-rapl:N/energy_uj``
  (microjoules, wrapping at ``max_energy_range_uj``) when the files are readable.
  Only top-level package domains are summed (sub-domains such as ``intel-rapl:0:0`` are
  contained in their package). The counter covers the whole socket, so other work on the
  machine is included: numbers are meaningful on a quiet machine only.

Nothing is ever estimated from TDP or utilization: without a counter the result is
``joules_per_inference=None`` with ``source="unavailable: <reason>"``.
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunekit.inputs import Inputs, call_model, inference_mode_of
from prunekit.measure.timing import cpu_threads, prepare

RAPL_ROOT = "/sys/class/powercap"
_PACKAGE = re.compile(r"intel-rapl:\d+$")


@dataclass
class EnergyStats:
    """Joules per forward pass (``None`` when no counter is readable) and where from."""

    joules_per_inference: float | None
    source: str
    iterations: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rapl_domains(root: str) -> list[str]:
    paths = sorted(glob.glob(os.path.join(root, "intel-rapl:*")))
    return [p for p in paths if _PACKAGE.search(os.path.basename(p))]


def _read_int(path: str) -> int:
    with open(path, encoding="ascii") as handle:
        return int(handle.read().strip())


def rapl_reader(root: str = RAPL_ROOT) -> tuple[Callable[[], list[int]] | None, str]:
    """A function reading every package counter (µJ), or ``None`` and the reason why not."""
    domains = _rapl_domains(root)
    if not domains:
        return None, f"unavailable: no RAPL package domains under {root}"
    files = [os.path.join(d, "energy_uj") for d in domains]
    try:
        for path in files:
            _read_int(path)
    except (OSError, ValueError) as exc:
        return None, f"unavailable: RAPL counter not readable ({exc})"
    return (lambda: [_read_int(p) for p in files]), "rapl:" + ",".join(map(os.path.basename,
                                                                            domains))


def rapl_joules(before: list[int], after: list[int], root: str = RAPL_ROOT) -> float:
    """Joules between two RAPL readings, correcting for counter wrap-around per domain."""
    total = 0
    for domain, start, end in zip(_rapl_domains(root), before, after):
        delta = end - start
        if delta < 0:
            delta += _read_int(os.path.join(domain, "max_energy_range_uj")) + 1
        total += delta
    return total * 1e-6


def _nvml_reader(device: torch.device) -> tuple[Callable[[], int] | None, str]:
    try:
        import pynvml
    except ImportError:
        return None, "unavailable: pynvml is not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # NVML errors are a family of classes; any means "no counter"
        return None, f"unavailable: NVML total energy counter not readable ({exc})"
    return (lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)), "nvml"


def _run_for(run: Callable[[], Any], sync: Callable[[], None], min_seconds: float) -> tuple[int,
                                                                                         float]:
    start, iterations = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds:
        run()
        iterations += 1
    sync()
    return iterations, time.perf_counter() - start


def energy(model: nn.Module, inputs: Inputs, device: str | torch.device = "cpu",
           threads: int | None = 2, min_seconds: float = 2.0,
           rapl_root: str = RAPL_ROOT) -> EnergyStats:
    """Joules per forward pass, read from NVML (CUDA) or RAPL (CPU) over ``min_seconds``.

    ``joules_per_inference = (E_after − E_before) / iterations``. Returns
    ``EnergyStats(None, "unavailable: …")`` without running the model when no counter
    is readable. Counters measure the whole device/socket, idle power included.
    """
    dev, model_dev, inputs_dev = prepare(model, inputs, device)
    run = lambda: call_model(model_dev, inputs_dev)  # noqa: E731
    with cpu_threads(threads), inference_mode_of(model_dev):
        if dev.type == "cuda":
            read, source = _nvml_reader(dev)
            if read is None:
                return EnergyStats(None, source)
            sync = lambda: torch.cuda.synchronize(dev)  # noqa: E731
            run(), sync()
            before = read()
            iterations, seconds = _run_for(run, sync, min_seconds)
            joules = (read() - before) * 1e-3
        else:
            read, source = rapl_reader(rapl_root)
            if read is None:
                return EnergyStats(None, source)
            run()
            before = read()
            iterations, seconds = _run_for(run, lambda: None, min_seconds)
            joules = rapl_joules(before, read(), rapl_root)
    return EnergyStats(joules / iterations, source, iterations, seconds)
