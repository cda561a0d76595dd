"""Rich terminal tables: per-layer before → after, and the dense-vs-pruned summary.

Both take plain data (``LayerRow`` list, ``Comparison.to_dict()``) so a saved run can be
re-rendered from its JSON without the models.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from prunekit.report.layers import LayerRow

_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def human(value: float | None, digits: int = 3) -> str:
    """``1234567 -> '1.23M'``; ``None -> '—'``."""
    if value is None:
        return "—"
    for scale, suffix in _SUFFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def _arrow(before: float | None, after: float | None, removed: bool) -> str:
    if removed:
        return f"{human(before)} → [red]removed[/red]"
    if before == after:
        return human(before)
    return f"{human(before)} → [bold]{human(after)}[/bold]"


def layer_table(rows: list[LayerRow], title: str = "Layers (dense → pruned)",
                only_compute: bool = True, max_rows: int | None = None) -> Table:
    """Table of width, parameters and MACs before → after for each layer.

    ``only_compute`` keeps the layers that execute MACs (convolutions, linears, attention)
    plus removed modules; normalization layers follow their convolution's width anyway.
    """
    shown = [r for r in rows if not only_compute or r.macs_before or r.removed]
    table = Table(title=title, title_justify="left")
    for header, justify in (("layer", "left"), ("type", "left"), ("width", "right"),
                            ("params", "right"), ("MACs", "right"), ("kept", "right")):
        table.add_column(header, justify=justify)
    for row in shown[:max_rows]:
        kept = row.kept_width
        table.add_row(
            row.name, row.kind, _arrow(row.width_before, row.width_after, row.removed),
            _arrow(row.params_before, row.params_after, row.removed),
            _arrow(row.macs_before, row.macs_after, row.removed),
            "—" if kept is None else f"{kept:.0%}",
        )
    if max_rows is not None and len(shown) > max_rows:
        table.caption = f"… {len(shown) - max_rows} more layers in report.json"
    return table


def _ms(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "—"
    return f"{stats['median_ms']:.3g} ms ± {stats['iqr_ms'] / 2:.2g}"


def _ratio(value: float | None, suffix: str = "×") -> str:
    return "—" if value is None else f"{value:.3g}{suffix}"


def _bytes_of(stats: dict[str, Any] | None) -> float | None:
    return None if not stats else stats.get("total_bytes")


def _joules(stats: dict[str, Any] | None) -> str:
    value = None if not stats else stats.get("joules_per_inference")
    return "—" if value is None else f"{value:.3g} J"


def summary_rows(c: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, dense, pruned, ratio) rows from ``Comparison.to_dict()``."""
    acc = c.get("accuracy_dense"), c.get("accuracy_pruned")
    return [
        ("parameters", human(c["params_dense"]), human(c["params_pruned"]),
         _ratio(c["compression_ratio"]) + " smaller"),
        ("size", human(c["bytes_dense"]) + "B", human(c["bytes_pruned"]) + "B",
         _ratio(c["bytes_dense"] / max(c["bytes_pruned"], 1))),
        ("MACs (theory)", human(c["macs_dense"]), human(c["macs_pruned"]),
         _ratio(c["mac_speedup_theoretical"]) + " fewer"),
        ("latency (measured)", _ms(c["latency_dense"]), _ms(c["latency_pruned"]),
         _ratio(c["measured_speedup"]) + " faster"),
        ("ρ = measured / theory", "", "", _ratio(c["rho"], "")),
        ("peak memory", human(_bytes_of(c.get("memory_dense"))) + "B",
         human(_bytes_of(c.get("memory_pruned"))) + "B", _ratio(c.get("memory_ratio"))),
        ("energy / inference", _joules(c.get("energy_dense")), _joules(c.get("energy_pruned")),
         _ratio(c.get("energy_ratio"))),
        ("accuracy", "—" if acc[0] is None else f"{acc[0]:.4f}",
         "—" if acc[1] is None else f"{acc[1]:.4f}",
         "—" if c.get("accuracy_retention") is None else f"{c['accuracy_retention']:.2%} kept"),
    ]


def summary_table(comparison: dict[str, Any], title: str = "Dense vs pruned") -> Table:
    """Headline table; ``comparison`` is ``Comparison.to_dict()``."""
    table = Table(title=title, title_justify="left")
    for header, justify in (("metric", "left"), ("dense", "right"), ("pruned", "right"),
                            ("ratio", "right")):
        table.add_column(header, justify=justify)
    for row in summary_rows(comparison):
        table.add_row(*row)
    table.caption = summary_caption(comparison)
    return table


def summary_caption(c: dict[str, Any]) -> str:
    """Where and how the numbers were measured (device, threads, batch, CPU, energy source)."""
    lat = c["latency_dense"]
    return (f"{lat['device']}, {lat['threads']} threads, batch {lat['batch_size']}, "
            f"{len(lat['samples_ms'])} timed passes each (median ± IQR/2); "
            f"{c.get('machine', {}).get('cpu', '')}; energy: {c.get('energy_source')}. "
            f"MACs are theory; latency is measured.")


def print_report(report: dict[str, Any], console: Console | None = None,
                 max_rows: int | None = 40) -> None:
    """Print the summary and per-layer tables of a report dict (see ``build_report``)."""
    from prunekit.report.layers import rows_from_dicts

    console = console or Console()
    if report.get("comparison"):
        console.print(summary_table(report["comparison"]))
    if report.get("layers"):
        console.print(layer_table(rows_from_dicts(report["layers"]), max_rows=max_rows))
