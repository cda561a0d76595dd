"""Summaries (median and spread, mean and SE) and tables (terminal and Markdown).

Every benchmark prints and stores numbers through these: a repeated measurement is shown
as its median with its spread, never as its best reading.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def summary(values: Sequence[float]) -> dict[str, Any]:
    """``n``, ``median``, quartiles ``p25``/``p75``, ``iqr``, ``min``, ``max`` and ``mean``
    of ``values`` (every value kept by the caller; this only summarizes)."""
    xs = sorted(float(v) for v in values)
    if not xs:
        raise ValueError("summary needs at least one value")
    q1, _, q3 = (statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1
                 else (xs[0], xs[0], xs[0]))
    return {"n": len(xs), "median": statistics.median(xs), "p25": q1, "p75": q3,
            "iqr": q3 - q1, "min": xs[0], "max": xs[-1], "mean": statistics.fmean(xs)}


def median_spread(values: Sequence[float], fmt: str = ".3g", unit: str = "") -> str:
    """``"1.23 s (1.10–1.40, n=5)"``: the median, then the min–max range and the count."""
    s = summary(values)
    if s["n"] == 1:
        return f"{s['median']:{fmt}}{unit} (n=1)"
    return f"{s['median']:{fmt}}{unit} ({s['min']:{fmt}}–{s['max']:{fmt}}, n={s['n']})"


def mean_se_text(mean: float, se: float, fmt: str = "+.2f") -> str:
    """``"+0.39 ± 0.15"`` (``± nan`` printed as ``± —``)."""
    spread = "—" if math.isnan(se) else f"{se:{fmt.lstrip('+')}}"
    return f"{mean:{fmt}} ± {spread}"


def cell(value: Any, fmt: str = ".3g") -> str:
    """A table cell: floats formatted, ``None`` as an em dash, anything else as text."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return format(value, fmt)
    return str(value)


def markdown(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = ".3g") -> str:
    """A GitHub Markdown table (no trailing newline)."""
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(cell(v, fmt) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def show(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
         fmt: str = ".3g", width: int | None = None) -> None:
    """The same table on the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(str(c))
    for row in rows:
        table.add_row(*[cell(v, fmt) for v in row])
    Console(width=width).print(table)
