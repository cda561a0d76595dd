"""Timing one module or model on a :class:`DeviceSpec` (dtype, memory format, threads).

Thin layer over :func:`prunekit.measure.latency`: it places a copy of the module and its
inputs the way the spec says (device, dtype, ``channels_last`` for 4-d tensors) and returns
the median latency in milliseconds. Also: inputs at another batch size, and dense-vs-pruned
timing in alternating rounds so that a noisy neighbour slows both sides alike.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from prunekit.hardware.signature import DeviceSpec
from prunekit.measure import latency

LatencyFn = Callable[[nn.Module], float]


def place_tensor(t: torch.Tensor, spec: DeviceSpec) -> torch.Tensor:
    """``t`` on the spec's device; floating tensors in its dtype; 4-d in channels_last."""
    dtype = spec.dtype if t.is_floating_point() else t.dtype
    out = t.to(spec.torch_device, dtype)
    if spec.channels_last and out.dim() == 4:
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def place_inputs(inputs: Any, spec: DeviceSpec) -> Any:
    """Every tensor of ``inputs`` (tensor, tuple/list, dict) placed with :func:`place_tensor`."""
    if isinstance(inputs, torch.Tensor):
        return place_tensor(inputs, spec)
    if isinstance(inputs, dict):
        return {k: place_inputs(v, spec) for k, v in inputs.items()}
    if isinstance(inputs, tuple | list):
        return type(inputs)(place_inputs(v, spec) for v in inputs)
    return inputs


def place_module(module: nn.Module, spec: DeviceSpec) -> nn.Module:
    """``module`` itself when already placed as the spec says, else a placed deep copy."""
    tensors = [*module.parameters(), *module.buffers()]
    if not spec.channels_last and all(
            t.device == spec.torch_device
            and (not t.is_floating_point() or t.dtype == spec.dtype) for t in tensors):
        return module
    out = copy.deepcopy(module).to(spec.torch_device, spec.dtype)
    return out.to(memory_format=torch.channels_last) if spec.channels_last else out


def with_batch(inputs: Any, batch_size: int | None) -> Any:
    """``inputs`` with every tensor's leading dim repeated/cut to ``batch_size`` (None: as is)."""
    if batch_size is None:
        return inputs
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() == 0:
            return inputs
        reps = -(-batch_size // inputs.shape[0])
        return inputs.repeat(reps, *([1] * (inputs.dim() - 1)))[:batch_size].contiguous()
    if isinstance(inputs, dict):
        return {k: with_batch(v, batch_size) for k, v in inputs.items()}
    if isinstance(inputs, tuple | list):
        return type(inputs)(with_batch(v, batch_size) for v in inputs)
    return inputs


def time_placed(module: nn.Module, inputs: Any, spec: DeviceSpec, warmup: int = 2,
                repeats: int = 7, stat: str = "median_ms") -> float:
    """Latency (ms) of a module and inputs *already placed* for ``spec``: the median, or
    ``stat="min_ms"`` for small comparisons on a busy machine (load only adds time)."""
    stats = latency(module, inputs, device=spec.device, threads=spec.threads,
                    warmup=warmup, repeats=repeats)
    return float(getattr(stats, stat))


def model_latency_fn(inputs: Any, spec: DeviceSpec, warmup: int = 3,
                     repeats: int = 10, min_total_ms: float = 0.0,
                     max_repeats: int = 50) -> LatencyFn:
    """``fn(model) -> median ms`` for whole models (placed copies, the model is untouched).

    ``min_total_ms`` > 0 makes fast models run more often: the last warm-up run is timed
    and the median is taken over ``n = max(repeats, min(⌈min_total_ms / t_warm⌉, max_repeats))``
    runs, so a 15 ms model gets as many milliseconds of samples as a 100 ms one (at batch
    1 on CPU, 3 runs of a small model are within scheduler noise of each other). CPU only:
    CUDA events are precise and a CUDA-graph timing recaptures on every call."""
    placed = place_inputs(inputs, spec)

    def measure(model: nn.Module) -> float:
        module = place_module(model, spec)
        n = repeats
        if min_total_ms > 0 and spec.torch_device.type == "cpu":  # CUDA timings are exact
            if warmup > 1:
                time_placed(module, placed, spec, 0, warmup - 1)
            t_warm = time_placed(module, placed, spec, 0, 1)
            n = max(repeats, min(max_repeats, math.ceil(min_total_ms / max(t_warm, 1e-6))))
            return time_placed(module, placed, spec, 0, n)
        return time_placed(module, placed, spec, warmup, n)

    return measure


def paired_rounds(dense: nn.Module, pruned: nn.Module, fn: LatencyFn,
                  rounds: int = 3) -> tuple[list[float], list[float]]:
    """Every reading of ``rounds`` alternating (ABBA) measurements: (dense ms, pruned ms),
    one per round, in order."""
    times: dict[int, list[float]] = {0: [], 1: []}
    models = (dense, pruned)
    for r in range(rounds):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            times[side].append(fn(models[side]))
    return times[0], times[1]


def paired_latency(dense: nn.Module, pruned: nn.Module, fn: LatencyFn,
                   rounds: int = 3) -> tuple[float, float]:
    """Medians over ``rounds`` alternating (ABBA) measurements of dense and pruned, in ms."""
    dense_ms, pruned_ms = paired_rounds(dense, pruned, fn, rounds)
    return statistics.median(dense_ms), statistics.median(pruned_ms)

