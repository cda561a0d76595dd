"""One line that says whether a measured-speedup target was met, with the measurement's spread.

``prunekit.prune(..., target_speedup=...)`` prints it at the end of its progress, and the demo
and the CLI show it. The spread is the lowest and highest speedup of the individual
alternating (ABBA) rounds that timed the returned plan against the dense model — the search
records every round's reading (``dense_rounds_ms``, ``pruned_rounds_ms``) with each candidate.
Works on the result of :func:`prunekit.hardware.prune_to_speedup` whether the measurement is
the result itself or its ``speedup`` field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prunekit.measure.display import format_ms, format_target


def round_range(dense_ms: Sequence[float], pruned_ms: Sequence[float]) -> tuple[float, float]:
    """Lowest and highest speedup ``dense / pruned`` over the individual rounds."""
    if not dense_ms or len(dense_ms) != len(pruned_ms):
        raise ValueError("round_range needs one dense and one pruned reading per round")
    ratios = [d / max(p, 1e-12) for d, p in zip(dense_ms, pruned_ms, strict=True)]
    return min(ratios), max(ratios)


def measured_rounds(result: Any) -> tuple[list[float], list[float]] | None:
    """The per-round readings (dense, pruned) of the measurement behind the returned plan."""
    m = result.speedup
    for rec in getattr(m, "search", []):
        if rec.get("measured_ms") == m.pruned_ms and rec.get("dense_rounds_ms"):
            return list(rec["dense_rounds_ms"]), list(rec["pruned_rounds_ms"])
    return None


def target_line(result: Any) -> str:
    """``'target 2× faster met: measured 2.13× (range over 2 rounds 2.05–2.20×); 280 ms →
    131 ms, 3.10× fewer MACs (ρ 0.69)'`` — or ``missed``."""
    m = result.speedup
    rounds = measured_rounds(result)
    spread = round_range(*rounds) if rounds else None
    label = f"range over {len(rounds[0])} rounds" if rounds else "no spread recorded"
    line = format_target(m.target_speedup, m.measured_speedup, spread, label)
    macs = result.macs_before / max(result.macs_after, 1) if result.macs_after else None
    tail = f"{format_ms(m.dense_ms)} → {format_ms(m.pruned_ms)}"
    if macs:
        tail += f", {macs:.2f}× fewer MACs (ρ {m.measured_speedup / macs:.2f})"
    return f"{line}; {tail}"
