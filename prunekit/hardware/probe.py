"""Which channel multiples run efficiently on a device: a small, cached width probe.

Kernels tile channels (SIMD lanes on CPU, tensor-core tiles on GPU), so a layer with
``w`` channels often costs as much as one with the next multiple of the tile: the extra
channels would be free, the missing ones save nothing. The probe times a 3×3 convolution
and a linear layer at every width in ``[lo, hi]``, fits a line ``f(w) = a + b·w`` to each
op's timings (the cost of a width if there were no tiles) and scores every candidate
multiple ``m`` by how its widths sit relative to that line:

``penalty(w) = t(w) / f(w)``

On a staircase the multiples of the tile lie *below* the line and the other widths above
it, so each candidate gets a gain: mean penalty of the widths that are not multiples of
``m`` minus that of those that are. The chosen multiple is the smallest ``m`` whose gain is
at least ``share`` (85 %) of the best gain — multiples of the tile's multiples gain about
as much as the tile itself — or 1 when no gain reaches ``min_gain`` (2 %: smooth hardware,
or only noise). Results are cached per device signature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from prunekit.hardware.cache import DiskCache
from prunekit.hardware.signature import DeviceSpec, device_signature
from prunekit.hardware.timing import place_module, place_tensor, time_placed

CANDIDATES = (1, 2, 4, 8, 16, 32, 64)
MIN_SAMPLES = 3  # a candidate needs this many multiples in the probed range (per op)
DEFAULT_RANGE = {"cpu": (96, 160), "cuda": (64, 320)}  # 64 is a candidate on CUDA only
WidthTimer = Callable[[str, int], float]  # (op, width) -> ms


@dataclass
class WidthProfile:
    """Probe result: chosen ``multiple``, each candidate's gain (``scores``), raw timings."""

    multiple: int
    scores: dict[int, float]
    times_ms: dict[str, dict[int, float]] = field(default_factory=dict)
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def penalties(times: dict[int, float]) -> dict[int, float]:
    """``t(w) / f(w)`` with ``f`` the least-squares line through all ``(w, t(w))``."""
    ws = sorted(times)
    n = len(ws)
    if n < 2:
        return dict.fromkeys(ws, 1.0)
    mw, mt = sum(ws) / n, sum(times[w] for w in ws) / n
    var = sum((w - mw) ** 2 for w in ws)
    slope = sum((w - mw) * (times[w] - mt) for w in ws) / var
    floor = min(times.values())  # a line fitted to noise may dip to ≤ 0: never below this
    return {w: times[w] / max(mt + slope * (w - mw), floor, 1e-12) for w in ws}


def choose_multiple(times_by_op: dict[str, dict[int, float]], min_gain: float = 0.02,
                    share: float = 0.85,
                    candidates: Sequence[int] = CANDIDATES) -> tuple[int, dict[int, float]]:
    """The multiple chosen from probe timings, and the gain of every candidate."""
    pens = [penalties(t) for t in times_by_op.values()]
    gains = {}
    for m in candidates:
        on = [p[w] for p in pens for w in p if w % m == 0]
        off = [p[w] for p in pens for w in p if w % m]
        if len(on) >= MIN_SAMPLES * len(pens) and off:
            gains[m] = sum(off) / len(off) - sum(on) / len(on)
    best = max(gains.values(), default=0.0)
    if best < min_gain:
        return 1, gains
    return min(m for m in gains if gains[m] >= share * best), gains


def _probe_op(op: str, width: int, spec: DeviceSpec, batch: int) -> tuple[nn.Module,
                                                                            torch.Tensor]:
    if op == "conv3x3":
        return nn.Conv2d(width, width, 3, padding=1, bias=False), torch.randn(batch, width,
                                                                               14, 14)
    if op == "linear":
        return nn.Linear(width, width), torch.randn(batch * 256, width)
    raise ValueError(f"unknown probe op {op!r}")


def default_width_timer(spec: DeviceSpec, batch: int = 1, repeats: int = 7) -> WidthTimer:
    """Time the probe ops on the spec's device: the *fastest* of ``repeats`` runs, since
    a busy machine only ever adds time and the probe compares widths, not totals."""
    def timer(op: str, width: int) -> float:
        module, x = _probe_op(op, width, spec, batch)
        return time_placed(place_module(module.eval(), spec), place_tensor(x, spec), spec,
                           warmup=2, repeats=repeats, stat="min_ms")
    return timer


def probe_widths(spec: DeviceSpec | None = None, lo: int | None = None, hi: int | None = None,
                 ops: Sequence[str] = ("conv3x3", "linear"), min_gain: float = 0.02,
                 timer: WidthTimer | None = None, use_cache: bool = True) -> WidthProfile:
    """Find the channel multiple that runs efficiently on ``spec`` (cached on disk).

    Parameters
    ----------
    spec
        Target device (default: CPU, 2 threads, float32).
    lo, hi
        Probed widths ``lo..hi`` inclusive; a candidate multiple needs 3 multiples in the
        range (default 96..160 on CPU, 64..320 on CUDA).
    timer
        ``timer(op, width) -> ms``; injected in tests, default times real layers.
    use_cache
        Read and write ``$PRUNEKIT_CACHE`` (the cache key includes the probe settings).
    """
    spec = spec or DeviceSpec()
    default_lo, default_hi = DEFAULT_RANGE[spec.torch_device.type]
    lo, hi = lo or default_lo, hi or default_hi
    if not 1 <= lo < hi:
        raise ValueError(f"probe needs 1 <= lo < hi, got lo={lo}, hi={hi}")
    cache = DiskCache.open("widths", device_signature(spec), persist=use_cache)
    key = f"{lo}-{hi}-{','.join(ops)}-{min_gain}"
    if key in cache.entries:
        hit = cache.entries[key]
        return WidthProfile(hit["multiple"], {int(k): v for k, v in hit["scores"].items()},
                            {op: {int(w): t for w, t in ts.items()}
                             for op, ts in hit["times_ms"].items()}, cached=True)
    timer = timer or default_width_timer(spec)
    times = {op: {w: float(timer(op, w)) for w in range(lo, hi + 1)} for op in ops}
    multiple, scores = choose_multiple(times, min_gain)
    profile = WidthProfile(multiple, scores, times)
    cache.entries[key] = {"multiple": multiple, "scores": scores, "times_ms": times}
    cache.save()
    return profile
