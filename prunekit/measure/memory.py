"""Peak memory of one inference forward pass.

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` — the peak
  of the caching allocator's *allocated* bytes above the level before the pass.
* CPU: the allocation timeline recorded by ``torch.profiler`` (``profile_memory=True``):
  every allocation and free of PyTorch's CPU allocator during the pass, in order; the peak
  of their running sum is the activation/workspace peak. It does not see memory allocated
  outside PyTorch's allocator (e.g. inside oneDNN scratchpads), and unlike an RSS delta it
  is not disturbed by the heap reusing freed pages, so it is reproducible run to run.

Weights are reported separately (:func:`~prunekit.measure.counting.model_bytes`), so
``total_bytes = weights_bytes + peak_bytes``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunekit.measure._inputs import Inputs, call_model, inference_mode_of
from prunekit.measure.counting import model_bytes
from prunekit.measure.timing import prepare


@dataclass
class MemoryStats:
    """Peak activation/workspace bytes of one forward pass, plus the weights' bytes."""

    peak_bytes: int | None
    weights_bytes: int
    device: str
    method: str

    @property
    def total_bytes(self) -> int | None:
        return None if self.peak_bytes is None else self.peak_bytes + self.weights_bytes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_bytes": self.total_bytes}


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler's native (C++) start/stop chatter on file descriptor 2."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured stderr without a descriptor
        yield
        return
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr.flush()
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _cpu_peak(model: nn.Module, inputs: Inputs) -> int:
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call_model(model, inputs)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    running = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        running += event.nbytes()
        peak = max(peak, running)
    return peak


def _cuda_peak(model: nn.Module, inputs: Inputs, device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    call_model(model, inputs)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def peak_memory(model: nn.Module, inputs: Inputs, device: str | torch.device = "cpu",
                warmup: int = 1) -> MemoryStats:
    """Peak bytes allocated during one inference forward pass (see the module docstring).

    ``warmup`` untimed passes run first so that one-time allocations (lazy init, kernel
    selection caches) are not counted as the pass's peak.
    """
    dev, model_dev, inputs_dev = prepare(model, inputs, device)
    with inference_mode_of(model_dev):
        for _ in range(warmup):
            call_model(model_dev, inputs_dev)
        if dev.type == "cuda":
            peak, method = _cuda_peak(model_dev, inputs_dev, dev), "torch.cuda.max_memory_allocated"
        else:
            peak, method = _cpu_peak(model_dev, inputs_dev), "torch.profiler allocation timeline"
    return MemoryStats(peak, model_bytes(model), str(dev), method)
