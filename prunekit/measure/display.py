"""How timings and speedups are written for people: one function per kind of number.

Every table, log line, report page and the demo print through these, so a latency always
reads ``783 ms (IQR 560–1090 ms)`` or ``2.04 s``, never ``2.04e+03 ms`` or ``± 3.1e+02``, and
a speedup whose interval contains 1 is never called a speedup:

* :func:`format_ms` — one duration, unit chosen by size (ns, µs, ms, s), 3 significant
  digits, no exponent;
* :func:`format_latency` — median, interquartile range and what is wrong with the timing
  (bimodal samples, a spread above the stated bound);
* :func:`format_speedup` — ``1.37× faster (95 % CI 1.21–1.52×)``, ``no measurable difference
  (0.86–1.14×)`` or ``0.80× (slower; 0.75–0.85×)``;
* :func:`format_target` — whether a measured-speedup target was met, with the interval.

The functions take plain values or the dicts saved in ``report.json`` (old reports without
the newer fields still render).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

_UNITS = ((1e-3, 1e6, "ns"), (1.0, 1e3, "µs"), (1e3, 1.0, "ms"))  # (below ms, scale, unit)


def _digits(value: float, significant: int = 3) -> str:
    """``value`` with ``significant`` digits and no exponent (``1090``, ``783``, ``2.04``)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    value = float(f"{value:.{significant}g}")  # 0.9997 -> 1.0: count digits after rounding
    decimals = max(0, significant - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def _unit(ms: float) -> tuple[float, str]:
    """Scale and unit for a duration of ``ms`` milliseconds (as rounded to 3 digits, so
    999.7 ms is ``1.00 s``, not ``1000 ms``)."""
    rounded = float(f"{ms:.3g}") if math.isfinite(ms) else ms
    for below, scale, unit in _UNITS:
        if abs(rounded) < below:
            return scale, unit
    return 1e-3, "s"


def format_ms(ms: float | None) -> str:
    """One duration in milliseconds as text: ``0.412 ms -> '412 µs'``, ``2040 -> '2.04 s'``."""
    if ms is None:
        return "—"
    if ms == 0:
        return "0 ms"
    scale, unit = _unit(ms)
    return f"{_digits(ms * scale)} {unit}"


def _percent(fraction: float) -> str:
    """``0.4 -> '40 %'``; ``96.7 -> '97× the median'`` is clearer than ``'9667 %'``."""
    return f"{_digits(fraction)}×" if fraction >= 10 else f"{fraction:.0%}".replace("%", " %")


def _field(stats: Any, name: str, default: Any = None) -> Any:
    if isinstance(stats, Mapping):
        return stats.get(name, default)
    return getattr(stats, name, default)


def latency_flags(stats: Any) -> list[str]:
    """What makes a timing unreliable, in words (empty when it is stable)."""
    flags = []
    clusters = _field(stats, "clusters") or []
    if _field(stats, "bimodal") and len(clusters) == 2:
        low, high = clusters
        flags.append(f"bimodal: {low['count']}× near {format_ms(low['median_ms'])}, "
                     f"{high['count']}× near {format_ms(high['median_ms'])}")
    spread, bound = _field(stats, "spread"), _field(stats, "max_spread")
    if spread is not None and bound is not None and spread > bound:
        flags.append(f"unstable: IQR/median {_percent(spread)} > {_percent(bound)}")
    return flags


def format_latency(stats: Any, flags: bool = True) -> str:
    """``'783 ms (IQR 560–1090 ms)'`` from a ``LatencyStats`` or its dict; with ``flags``,
    ``'; bimodal: …'`` / ``'; unstable: …'`` appended when the timing is not reliable."""
    if not stats:
        return "—"
    median = _field(stats, "median_ms")
    p25, p75 = _field(stats, "p25_ms"), _field(stats, "p75_ms")
    text = format_ms(median)
    if p25 is not None and p75 is not None:
        scale, unit = _unit(median)
        if all(1 <= abs(v * scale) < 1e4 or v == 0 for v in (p25, p75)):  # 560–1090 ms
            text += f" (IQR {_digits(p25 * scale)}–{_digits(p75 * scale)} {unit})"
        else:  # a spread over orders of magnitude: each bound in its own unit
            text += f" (IQR {format_ms(p25)}–{format_ms(p75)})"
    if flags and (problems := latency_flags(stats)):
        text += "; " + "; ".join(problems)
    return text


def _ratio(value: float) -> str:
    return f"{_digits(value)}×"


def _interval(interval: Sequence[float] | None) -> str:
    lo, hi = interval  # type: ignore[misc]
    return f"{_digits(lo)}–{_digits(hi)}×"


def speedup_verdict(speedup: float | None, interval: Sequence[float] | None) -> str:
    """``"faster"``, ``"slower"``, ``"no measurable difference"`` (interval contains 1) or
    ``"unknown"`` (no measurement). Without an interval the point value decides."""
    if speedup is None:
        return "unknown"
    lo, hi = interval if interval is not None else (speedup, speedup)
    if lo <= 1.0 <= hi:
        return "no measurable difference"
    return "faster" if lo > 1.0 else "slower"


def format_speedup(speedup: float | None, interval: Sequence[float] | None,
                   confidence: float = 0.95) -> str:
    """A measured speedup as text that never overstates it.

    ``1.37× faster (95 % CI 1.21–1.52×)``; ``no measurable difference (95 % CI 0.86–1.14×)``
    when the interval contains 1; ``0.80×, slower (95 % CI 0.75–0.85×)``; a value without
    an interval says so."""
    verdict = speedup_verdict(speedup, interval)
    if verdict == "unknown":
        return "—"
    if interval is None:
        return f"{_ratio(speedup)} (no interval recorded)"
    ci = f"{confidence:.0%} CI {_interval(interval)}".replace("%", " %")
    if verdict == "no measurable difference":
        return f"no measurable difference ({ci})"
    return f"{_ratio(speedup)} {verdict} ({ci})" if verdict == "faster" else (
        f"{_ratio(speedup)}, slower ({ci})")


def target_met(target: float, speedup: float | None) -> bool:
    """A measured-speedup target is met when the measured (median) speedup reaches it."""
    return speedup is not None and speedup >= target


def format_target(target: float, speedup: float | None, interval: Sequence[float] | None,
                  label: str = "95 % CI") -> str:
    """``'target 2× faster met: measured 2.13× (95 % CI 2.05–2.20×)'`` or ``'… missed: …'``;
    a met target whose interval reaches below it says ``met within noise``. ``label`` names
    the interval (e.g. ``"range over 2 rounds"``)."""
    if speedup is None:
        return f"target {target:g}× not measured"
    met = target_met(target, speedup)
    word = "met" if met else "missed"
    if met and interval is not None and interval[0] < target:
        word = "met within noise"
    ci = "" if interval is None else f" ({label} {_interval(interval)})"
    return f"target {target:g}× faster {word}: measured {_ratio(speedup)}{ci}"
