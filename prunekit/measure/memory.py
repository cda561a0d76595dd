"""Peak memory of one inference forward pass.

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` — the peak
  of the caching allocator's *allocated* bytes above the level before the pass.
* CPU: the peak of *live tensor bytes* during the pass, tracked by a dispatch mode: every
  tensor an ATen op returns is registered against its storage and released (weak-reference
  finalizer) when it dies; storages that existed before the pass (weights, inputs) are
  excluded. This is the activation peak. It does not see scratch memory a kernel frees
  before returning (e.g. oneDNN workspaces) nor allocator/heap overhead; unlike an RSS
  delta it is exact and reproducible run to run, and unlike ``torch.profiler`` it starts in
  milliseconds (the profiler imports ``torch._inductor`` on first use). ``cpu_method=
  "profiler"`` uses the CPU allocator timeline of ``torch.profiler`` instead, which also
  sees allocations inside kernels (e.g. oneDNN weight reorders).

Weights are reported separately (:func:`~prunekit.measure.counting.model_bytes`), so
``total_bytes = weights_bytes + peak_bytes``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from prunekit.inputs import Inputs, call_model, inference_mode_of
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


class _LiveBytes(TorchDispatchMode):
    """Tracks bytes of tensor storages created during the pass and still alive.

    Each output tensor of every ATen op is registered against its storage; a weak-reference
    finalizer releases the storage's bytes when the last registered tensor using it dies.
    Storages that existed before the pass (inputs, weights, in-place results) are skipped.
    """

    def __init__(self, preexisting: set[int]) -> None:
        super().__init__()
        self.preexisting = preexisting
        self.live: dict[int, list[int]] = {}  # data_ptr -> [bytes, tracked tensors]
        self.current = self.peak = 0

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # see counting._MacMode: avoid importing Dynamo
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided:
                self._track(tensor)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key == 0 or key in self.preexisting:
            return
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [storage.nbytes(), 0]
            self.current += entry[0]
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]


def _storage_ptrs(tensors: list[Any]) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in tensors if isinstance(t, torch.Tensor)}


def _cpu_peak(model: nn.Module, inputs: Inputs) -> int:
    state = [*model.parameters(), *model.buffers(), *tree_flatten(inputs)[0]]
    tracker = _LiveBytes(_storage_ptrs(state))
    with tracker:
        out = call_model(model, inputs)
    del out
    return tracker.peak


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler's native start/stop chatter on file descriptor 2."""
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


def _profiler_peak(model: nn.Module, inputs: Inputs) -> int:
    """Peak of the running sum of the CPU allocator's allocations and frees (in order)."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call_model(model, inputs)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    running = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        running += event.nbytes()
        peak = max(peak, running)
    return peak


CPU_METHODS = {
    "tensors": (_cpu_peak, "live tensor bytes (dispatch-mode tracker)"),
    "profiler": (_profiler_peak, "torch.profiler CPU allocator timeline"),
}


def _cuda_peak(model: nn.Module, inputs: Inputs, device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    call_model(model, inputs)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def peak_memory(model: nn.Module, inputs: Inputs, device: str | torch.device = "cpu",
                warmup: int = 1, cpu_method: str = "tensors") -> MemoryStats:
    """Peak bytes allocated during one inference forward pass (see the module docstring).

    ``warmup`` untimed passes run first so that one-time allocations (lazy init, kernel
    selection caches) are not counted as the pass's peak. On CPU, ``cpu_method="tensors"``
    (default) reports live tensor bytes; ``"profiler"`` also sees allocations made inside
    kernels (e.g. oneDNN weight reorders) at the cost of importing the profiler stack.
    """
    if cpu_method not in CPU_METHODS:
        raise ValueError(f"cpu_method must be one of {sorted(CPU_METHODS)}, got {cpu_method!r}")
    dev, model_dev, inputs_dev = prepare(model, inputs, device)
    with inference_mode_of(model_dev):
        for _ in range(warmup):
            call_model(model_dev, inputs_dev)
        if dev.type == "cuda":
            peak, method = _cuda_peak(model_dev, inputs_dev, dev), "torch.cuda.max_memory_allocated"
        else:
            measure, method = CPU_METHODS[cpu_method]
            peak = measure(model_dev, inputs_dev)
    return MemoryStats(peak, model_bytes(model), str(dev), method)
