"""Measured latency and throughput (CPU at a fixed thread count; CUDA events and graphs).

Speed is measured, never assumed: every number here comes from timing forward passes on
the machine that runs the code. On CPU the intra-op thread count is pinned for the
measurement (``threads``) and restored afterwards; each sample times one forward pass with
:func:`time.perf_counter`. On CUDA, samples are measured with CUDA events; for small batches
the forward pass is captured once in a CUDA graph and replayed, which removes the Python and
kernel-launch overhead that otherwise dominates small models (``cuda_graphs="auto"``).

A timing says whether it can be trusted: ``spread = IQR / median`` is compared with a stated
bound (``max_spread``, default :data:`STABLE_SPREAD`), and samples that fall into two
clusters (:func:`bimodal_split`, e.g. most passes at 2 ms and some at 176 ms when the machine
is shared) are flagged. With ``max_spread`` given, :func:`latency` re-times in blocks until
the spread is within the bound or a cap (passes, seconds) is reached; every sample is kept.
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from prunekit.inputs import Inputs, call_model, inference_mode_of
from prunekit.measure.display import format_ms

CudaGraphs = bool | Literal["auto"]
SMALL_BATCH = 8  # "auto" uses CUDA graphs at or below this batch size
STABLE_SPREAD = 0.10  # IQR / median at or below which a timing counts as stable
BIMODAL_GAP = 0.25  # a gap this large (relative to the lower cluster's median) splits
BIMODAL_SHARE = 0.10  # ... when each side holds at least this share of the samples (and 2)
Timer = Callable[[], float]


@dataclass
class LatencyStats:
    """Per-forward-pass latency in milliseconds.

    ``median_ms`` is the headline number; ``iqr_ms`` (75th − 25th percentile) the spread;
    ``samples_ms`` every timed pass in order, so that nothing is summarized away.
    ``spread = iqr_ms / median_ms``; ``stable`` is true when ``spread <= max_spread`` and the
    samples are not ``bimodal`` (then ``clusters`` holds the median and count of each of
    the two clusters); ``rounds`` is the number of timing blocks merged.
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
    spread: float = 0.0
    max_spread: float = STABLE_SPREAD
    stable: bool = True
    bimodal: bool = False
    clusters: list[dict[str, float]] = field(default_factory=list)
    rounds: int = 1

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


def _cpu_samples(run: Callable[[], Any], repeats: int, timer: Timer) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = timer()
        run()
        samples.append((timer() - start) * 1e3)
    return samples


def _cuda_event_samples(run: Callable[[], Any], repeats: int) -> list[float]:
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


def _cuda_runner(model: nn.Module, inputs: Inputs, graphs: bool,
                 notes: list[str]) -> tuple[Callable[[], Any], str]:
    if graphs:
        try:
            return _cuda_graph_runner(model, inputs), "cuda events, cuda graph replay"
        except Exception as exc:  # capture is best effort: record why, fall back to eager
            notes.append(f"cuda graph capture failed ({type(exc).__name__}: {exc}); eager")
    return (lambda: call_model(model, inputs)), "cuda events, eager"


Sampler = Callable[[int], list[float]]


def _sampler(dev: torch.device, model: nn.Module, inputs: Inputs, warmup: int, graphs: bool,
             notes: list[str], timer: Timer) -> tuple[Sampler, str]:
    """Run ``warmup`` untimed passes; return ``sample(n) -> n timings in ms`` and its method."""
    if dev.type == "cuda":
        run, method = _cuda_runner(model, inputs, graphs, notes)
    else:
        run, method = (lambda: call_model(model, inputs)), "time.perf_counter per forward pass"
    for _ in range(warmup):
        run()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        return (lambda n: _cuda_event_samples(run, n)), method
    return (lambda n: _cpu_samples(run, n, timer)), method


def bimodal_split(samples: Sequence[float], min_gap: float = BIMODAL_GAP,
                  min_share: float = BIMODAL_SHARE) -> int | None:
    """Where the sorted samples split into two clusters, or None when they do not.

    A split at ``i`` (the first ``i`` sorted samples are the lower cluster) counts when the
    gap between the clusters, ``s[i] - s[i-1]``, is at least ``min_gap`` times the lower
    cluster's median and each cluster holds at least ``max(2, ⌈min_share · n⌉)`` samples
    (one slow outlier is not a second mode). Returns the split with the largest relative
    gap. Unimodal noise, however wide, has no such gap inside its bulk.
    """
    ordered = sorted(samples)
    n = len(ordered)
    least = max(2, math.ceil(min_share * n))
    best, best_gap = None, 0.0
    for i in range(least, n - least + 1):
        low = statistics.median(ordered[:i])
        gap = ordered[i] - ordered[i - 1]
        relative = gap / low if low > 0 else (math.inf if gap > 0 else 0.0)
        if relative >= min_gap and relative > best_gap:
            best, best_gap = i, relative
    return best


def _clusters(samples: Sequence[float]) -> list[dict[str, float]]:
    split = bimodal_split(samples)
    if split is None:
        return []
    ordered = sorted(samples)
    return [{"median_ms": statistics.median(part), "count": len(part)}
            for part in (ordered[:split], ordered[split:])]


def _quartiles(ordered: list[float]) -> tuple[float, float, float]:
    if len(ordered) == 1:
        return ordered[0], ordered[0], ordered[0]
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return q1, statistics.median(ordered), q3


def judge(samples: Sequence[float], max_spread: float = STABLE_SPREAD) -> dict[str, Any]:
    """Whether a set of timings can be trusted: ``spread`` (IQR / median), the bound
    ``max_spread``, ``bimodal`` with its two ``clusters``, and ``stable`` (spread within the
    bound and not bimodal). Also re-judges samples saved in an older report."""
    if not samples:
        raise ValueError("judge needs at least one sample")
    q1, median, q3 = _quartiles(sorted(samples))
    spread = (q3 - q1) / median if median > 0 else 0.0
    clusters = _clusters(samples)
    return {"spread": spread, "max_spread": max_spread,
            "stable": spread <= max_spread and not clusters, "bimodal": bool(clusters),
            "clusters": clusters}


def _summarize(samples: list[float], max_spread: float = STABLE_SPREAD, rounds: int = 1,
               **context: Any) -> LatencyStats:
    ordered = sorted(samples)
    q1, median, q3 = _quartiles(ordered)
    return LatencyStats(
        median_ms=median, iqr_ms=q3 - q1, p25_ms=q1, p75_ms=q3,
        min_ms=ordered[0], mean_ms=statistics.fmean(ordered), samples_ms=samples,
        rounds=rounds, **judge(ordered, max_spread), **context,
    )


def unstable_note(stats: LatencyStats, cap: str) -> str | None:
    """Why ``stats`` is not stable, in one line (None when it is)."""
    if stats.stable:
        return None
    why = []
    if stats.bimodal:
        low, high = stats.clusters
        why.append(f"bimodal ({low['count']} passes near {format_ms(low['median_ms'])}, "
                   f"{high['count']} near {format_ms(high['median_ms'])})")
    if stats.spread > stats.max_spread:
        why.append(f"IQR/median {stats.spread:.0%} > {stats.max_spread:.0%}".replace("%", " %"))
    return f"unstable after {len(stats.samples_ms)} passes ({cap}): " + ", ".join(why)


def _check_retiming(max_spread: float | None, max_repeats: int | None, repeats: int,
                    max_seconds: float) -> int:
    """Validate the re-timing options; return the cap on timed passes."""
    if max_spread is not None and (isinstance(max_spread, bool) or not isinstance(
            max_spread, int | float) or not 0 < max_spread < math.inf):
        raise ValueError(f"max_spread must be a positive number or None, got {max_spread!r}")
    cap = 4 * repeats if max_repeats is None else max_repeats
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < repeats:
        raise ValueError(f"max_repeats must be an integer >= repeats ({repeats}), got "
                         f"{max_repeats!r}")
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, int | float) or \
            not 0 < max_seconds < math.inf:
        raise ValueError(f"max_seconds must be a positive number, got {max_seconds!r}")
    return cap


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, with a clear error for a device that is not ``cpu`` /
    ``cuda[:i]`` or not on this machine (:func:`prunekit.measure.devices.validate_device`)."""
    from prunekit.measure.devices import validate_device

    return validate_device(device)


def latency(
    model: nn.Module,
    inputs: Inputs,
    device: str | torch.device = "cpu",
    threads: int | None = 2,
    warmup: int = 5,
    repeats: int = 30,
    cuda_graphs: CudaGraphs = "auto",
    max_spread: float | None = None,
    max_repeats: int | None = None,
    max_seconds: float = 30.0,
    timer: Timer = time.perf_counter,
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
    max_spread, max_repeats, max_seconds
        ``max_spread`` given: while ``IQR / median > max_spread`` (or the samples are
        bimodal), time ``repeats`` more passes, until ``max_repeats`` passes (default
        ``4 · repeats``) or ``max_seconds`` of timed passes; the result's ``stable`` and
        ``notes`` say whether the bound was reached. ``None`` (default): exactly
        ``repeats`` passes, judged against :data:`STABLE_SPREAD`.
    timer
        Clock in seconds for CPU samples (:func:`time.perf_counter`; injected in tests).
    """
    _check_counts(warmup, repeats)
    cap = _check_retiming(max_spread, max_repeats, repeats, max_seconds)
    bound = STABLE_SPREAD if max_spread is None else float(max_spread)
    dev, model_dev, inputs_dev = prepare(model, inputs, device)
    batch, notes = batch_size_of(inputs), []
    context = {"device": str(dev), "threads": threads, "batch_size": batch, "warmup": warmup}
    with cpu_threads(threads), inference_mode_of(model_dev):
        sample, method = _sampler(dev, model_dev, inputs_dev, warmup,
                                  dev.type == "cuda" and _use_graphs(cuda_graphs, batch), notes,
                                  timer)
        samples, rounds = sample(repeats), 1
        stats = _summarize(samples, bound, rounds, method=method, notes=notes, **context)
        while (max_spread is not None and not stats.stable and len(samples) < cap
               and sum(samples) < max_seconds * 1e3):
            samples += sample(min(repeats, cap - len(samples)))
            rounds += 1
            stats = _summarize(samples, bound, rounds, method=method, notes=notes, **context)
    if max_spread is not None and (note := unstable_note(stats, "re-timing cap reached")):
        notes.append(note)
    return stats


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


def merge_latency(parts: list[LatencyStats], max_spread: float | None = None) -> LatencyStats:
    """One :class:`LatencyStats` over the samples of several measurements of one model,
    judged against ``max_spread`` (default: the first part's bound)."""
    if not parts:
        raise ValueError("merge_latency needs at least one LatencyStats")
    first = parts[0]
    samples = [s for part in parts for s in part.samples_ms]
    notes = list(dict.fromkeys(n for part in parts for n in part.notes))
    bound = first.max_spread if max_spread is None else max_spread
    return _summarize(samples, bound, sum(p.rounds for p in parts),
                      device=first.device, threads=first.threads, batch_size=first.batch_size,
                      warmup=first.warmup, method=first.method, notes=notes)
