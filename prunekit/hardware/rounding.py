"""Kept widths that fit the hardware: multiples of the probed channel multiple.

A group of ``n`` channels may keep ``n`` (untouched) or any multiple of ``multiple`` in
``[lower, n)``. :func:`width_levels` gives the ladder of widths the latency-targeted search
walks down; :func:`round_width` rounds one width onto it.
"""

from __future__ import annotations

import math


def _check(n: int, multiple: int, lower: int) -> None:
    for name, value in (("n", n), ("multiple", multiple), ("lower", lower)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if lower > n:
        raise ValueError(f"lower={lower} exceeds the group size n={n}")


def round_width(width: int, n: int, multiple: int, lower: int = 1) -> int:
    """Largest allowed width ≤ ``width``: ``n`` itself, or a multiple of ``multiple`` in
    ``[lower, n]``; when no multiple fits below ``width``, the smallest one ≥ ``lower``
    (or ``n`` when there is none at all). Rounding down removes more, never less."""
    _check(n, multiple, lower)
    if width >= n:
        return n
    down = (max(width, lower) // multiple) * multiple
    if down >= lower and down >= 1:
        return down
    up = math.ceil(lower / multiple) * multiple
    return up if up <= n else n


def width_levels(n: int, multiple: int, lower: int = 1, levels: int = 8) -> list[int]:
    """Descending allowed widths for a group: ``n``, then about ``levels`` evenly spaced
    steps down to ``lower``, each a multiple of ``multiple`` (duplicates dropped).

    ``width_levels(64, 16) == [64, 48, 32, 16]``; ``width_levels(100, 8, levels=4) ==
    [100, 72, 48, 24]``.
    """
    _check(n, multiple, lower)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an int >= 1, got {levels!r}")
    out = [n]
    for j in range(levels - 1, 0, -1):
        w = round_width(max(1, round(n * j / levels)), n, multiple, lower)
        if w < out[-1]:
            out.append(w)
    return out
