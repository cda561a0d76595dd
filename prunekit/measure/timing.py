"""Measured latency and throughput (CPU at a fixed thread count; CUDA events and graphs).

Speed is measured, never assumed: every number here comes from timing forward passes on
the machine that runs the code. On CPU the intra-op thread count is pinned for the
measurement (``threads``) and restored afterwards; each sample times one forward pass with
:func:`time.perf_counter`. On CUDA, samples are measured with CUDA events; for small batches
the forward pass is captured once in a CUDA graph and replayed, which removes the Python and
kernel-launch overhead that otherwise dominates small models (``cuda_graphs="auto"``).
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from prunekit.measure._inputs import Inputs, call_model, inference_mode_of

CudaGraphs = bool | Literal["auto"]
SMALL_BATCH = 8  # "auto" uses CUDA graphs at or below this batch size


@dataclass
class LatencyStats:
    """Per-forward-pass latency in milliseconds.

    ``median_ms`` is the headline number; ``iqr_ms`` (75th − 25th percentile) the spread;
    ``samples_ms`` every timed pass in order, so that nothing is summarized away.
    """

    median_ms: float
    iqr_ms: float
    p25_ms: float
    p75_ms: float
    min_ms: float
    mean_ms: float
    samples_ms: list[float]
    device: str
    threads: int | None
    batch_size: int | None
    warmup: int
    method: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ThroughputStats:
    """Items (first dimension of the first input tensor) processed per second."""

    items_per_s: float
    batch_size: int
    iterations: int
    seconds: float
    device: str
    threads: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_size_of(inputs: Inputs) -> int | None:
    """Leading dimension of the first tensor found in ``inputs`` (None if there is none)."""
    values = inputs.values() if isinstance(inputs, dict) else (
        inputs if isinstance(inputs, tuple | list) else [inputs])
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return None


def to_device(inputs: Inputs, device: torch.device) -> Inputs:
    """A copy of ``inputs`` with every tensor moved to ``device`` (others untouched)."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, tuple | list):
        return type(inputs)(to_device(v, device) for v in inputs)
    return inputs


def model_on(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when all its tensors are on ``device``, else a moved deep copy.

    Measuring never moves the user's model: it gets a copy instead.
    """
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.device == device for t in tensors):
        return model
    return copy.deepcopy(model).to(device)


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Pin ``torch.set_num_threads(threads)`` for the block; restore the old value after."""
    if threads is None:
        yield
        return
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def prepare(model: nn.Module, inputs: Inputs,
            device: str | torch.device) -> tuple[torch.device, nn.Module, Inputs]:
    """Resolve ``device`` and return it with the model and inputs placed on it (copies)."""
    dev = resolve_device(device)
    return dev, model_on(model, dev), to_device(inputs, dev)


def _check_counts(warmup: int, repeats: int) -> None:
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")


def _cpu_samples(run: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def _cuda_event_samples(run: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        run()
    torch.cuda.synchronize()
    pairs = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        pairs.append((start, end))
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in pairs]


def _cuda_graph_runner(model: nn.Module, inputs: Inputs) -> Callable[[], Any]:
    """Capture one forward pass in a CUDA graph (after side-stream warm-up); return replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            call_model(model, inputs)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call_model(model, inputs)
    return graph.replay


def _use_graphs(cuda_graphs: CudaGraphs, batch: int | None) -> bool:
    if cuda_graphs == "auto":
        return batch is not None and batch <= SMALL_BATCH
    if not isinstance(cuda_graphs, bool):
        raise ValueError(f"cuda_graphs must be True, False or 'auto', got {cuda_graphs!r}")
    return cuda_graphs


def _cuda_samples(model: nn.Module, inputs: Inputs, warmup: int, repeats: int,
                  graphs: bool, notes: list[str]) -> tuple[list[float], str]:
    if graphs:
        try:
            replay = _cuda_graph_runner(model, inputs)
            return _cuda_event_samples(replay, warmup, repeats), "cuda events, cuda graph replay"
        except Exception as exc:  # capture is best effort: record why, fall back to eager
            notes.append(f"cuda graph capture failed ({type(exc).__name__}: {exc}); eager")
    run = lambda: call_model(model, inputs)  # noqa: E731
    return _cuda_event_samples(run, warmup, repeats), "cuda events, eager"


def _summarize(samples: list[float], **context: Any) -> LatencyStats:
    ordered = sorted(samples)
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else (
        ordered * 3)
    return LatencyStats(
        median_ms=statistics.median(ordered), iqr_ms=q3 - q1, p25_ms=q1, p75_ms=q3,
        min_ms=ordered[0], mean_ms=statistics.fmean(ordered), samples_ms=samples, **context,
    )


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, with a clear error when CUDA is asked for but absent."""
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available on this machine")
    return resolved


def latency(
    model: nn.Module,
    inputs: Inputs,
    device: str | torch.device = "cpu",
    threads: int | None = 2,
    warmup: int = 5,
    repeats: int = 30,
    cuda_graphs: CudaGraphs = "auto",
) -> LatencyStats:
    """Time ``repeats`` inference forward passes after ``warmup`` untimed ones.

    Parameters
    ----------
    model, inputs
        The model (left unmodified: moved copies are used on another device) and its
        example inputs (tensor, tuple of arguments or dict of keyword arguments).
    device
        ``"cpu"`` or ``"cuda[:i]"``.
    threads
        CPU intra-op threads during the measurement (restored afterwards); ``None`` keeps
        the current setting. Also applies to host-side work on CUDA.
    cuda_graphs
        ``"auto"`` replays a captured CUDA graph when the batch size is ≤ 8, ``True``
        always tries, ``False`` never. Ignored on CPU.
    """
    _check_counts(warmup, repeats)
    dev, model_dev, inputs_dev = prepare(model, inputs, device)
    batch, notes = batch_size_of(inputs), []
    with cpu_threads(threads), inference_mode_of(model_dev):
        if dev.type == "cuda":
            samples, method = _cuda_samples(model_dev, inputs_dev, warmup, repeats,
                                            _use_graphs(cuda_graphs, batch), notes)
        else:
            samples = _cpu_samples(lambda: call_model(model_dev, inputs_dev), warmup, repeats)
            method = "time.perf_counter per forward pass"
    return _summarize(samples, device=str(dev), threads=threads, batch_size=batch,
                      warmup=warmup, method=method, notes=notes)


def throughput(
    model: nn.Module,
    inputs: Inputs,
    device: str | torch.device = "cpu",
    threads: int | None = 2,
    warmup: int = 3,
    min_seconds: float = 1.0,
    max_iterations: int = 10_000,
) -> ThroughputStats:
    """Items per second over back-to-back forward passes lasting at least ``min_seconds``.

    ``items_per_s = batch_size · iterations / elapsed``; the batch size is the leading
    dimension of the first input tensor.
    """
    _check_counts(warmup, max_iterations)
    batch = batch_size_of(inputs)
    if batch is None:
        raise ValueError("throughput needs a tensor input with a batch dimension")
    dev, model_dev, inputs_dev = prepare(model, inputs, device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with cpu_threads(threads), inference_mode_of(model_dev):
        for _ in range(warmup):
            call_model(model_dev, inputs_dev)
        sync()
        start, iterations = time.perf_counter(), 0
        while iterations < max_iterations and time.perf_counter() - start < min_seconds:
            call_model(model_dev, inputs_dev)
            iterations += 1
            if dev.type == "cuda" and iterations % 10 == 0:
                sync()
        sync()
        elapsed = time.perf_counter() - start
    return ThroughputStats(batch * iterations / elapsed, batch, iterations, elapsed, str(dev),
                           threads)


def merge_latency(parts: list[LatencyStats]) -> LatencyStats:
    """One :class:`LatencyStats` over the samples of several measurements of one model."""
    if not parts:
        raise ValueError("merge_latency needs at least one LatencyStats")
    first = parts[0]
    samples = [s for part in parts for s in part.samples_ms]
    notes = [n for part in parts for n in part.notes]
    return _summarize(samples, device=first.device, threads=first.threads,
                      batch_size=first.batch_size, warmup=first.warmup, method=first.method,
                      notes=notes)
