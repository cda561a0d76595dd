"""Rich terminal tables: per-layer before → after, and the dense-vs-pruned summary.

Both take plain data (``LayerRow`` list, ``Comparison.to_dict()``) so a saved run can be
re-rendered from its JSON without the models.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from prunekit.measure.display import format_latency, format_speedup, speedup_verdict
from prunekit.report.layers import LayerRow

_SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
LEVEL_STYLE = {"fail": "bold red", "warn": "yellow", "ok": "green", "info": "default"}


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
                            ("params", "right"), ("MACs", "right"),
                            ("kept: width · params · MACs", "right")):
        table.add_column(header, justify=justify)
    for row in shown[:max_rows]:
        table.add_row(
            row.name, row.kind, _arrow(row.width_before, row.width_after, row.removed),
            _arrow(row.params_before, row.params_after, row.removed),
            _arrow(row.macs_before, row.macs_after, row.removed), kept_text(row),
        )
    if max_rows is not None and len(shown) > max_rows:
        table.caption = f"… {len(shown) - max_rows} more layers in report.json"
    return table


def kept_text(row: LayerRow) -> str:
    """``'97% · 6% · 6%'``: the fractions of width, parameters and MACs a layer kept."""
    return " · ".join("—" if v is None else f"{v:.0%}"
                      for v in (row.kept_width, row.kept_params, row.kept_macs))


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
        ("latency (measured)", format_latency(c["latency_dense"], flags=False),
         format_latency(c["latency_pruned"], flags=False),
         format_speedup(c["measured_speedup"], c.get("measured_speedup_interval"))),
        ("ρ = measured / theory", "", "", _rho(c)),
        ("peak memory", human(_bytes_of(c.get("memory_dense"))) + "B",
         human(_bytes_of(c.get("memory_pruned"))) + "B", _ratio(c.get("memory_ratio"))),
        ("energy / inference", _joules(c.get("energy_dense")), _joules(c.get("energy_pruned")),
         _ratio(c.get("energy_ratio"))),
        ("accuracy", "—" if acc[0] is None else f"{acc[0]:.4f}",
         "—" if acc[1] is None else f"{acc[1]:.4f}",
         "—" if c.get("accuracy_retention") is None else f"{c['accuracy_retention']:.2%} kept"),
    ]


def _rho(c: dict[str, Any]) -> str:
    """ρ with its interval; not given when the speedup itself is not measurable."""
    if c.get("rho") is None:
        return "—"
    interval = c.get("measured_speedup_interval")
    if speedup_verdict(c["measured_speedup"], interval) == "no measurable difference":
        return "— (no measurable speedup)"
    rho = c.get("rho_interval")
    return f"{c['rho']:.2f}" + (f" ({rho[0]:.2f}–{rho[1]:.2f})" if rho else "")


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
    lat, pruned = c["latency_dense"], c["latency_pruned"]
    rounds = lat.get("rounds")
    passes = (f"{len(lat['samples_ms'])} + {len(pruned['samples_ms'])} timed passes"
              + (f" in {rounds} alternating round{'s' * (rounds != 1)}" if rounds else ""))
    return (f"{lat['device']}, {lat['threads']} thread{'s' * (lat['threads'] != 1)}, "
            f"batch {lat['batch_size']}, "
            f"{passes} (median, IQR; speedup: 95 % bootstrap interval); "
            f"{c.get('machine', {}).get('cpu', '')}; energy: {c.get('energy_source')}. "
            f"MACs are theory; latency is measured.")


def print_report(report: dict[str, Any], console: Console | None = None,
                 max_rows: int | None = 40) -> None:
    """Print the summary lines (checks, target, speed, accuracy), then the dense-vs-pruned
    and per-layer tables of a report dict (see ``build_report``)."""
    from prunekit.report.layers import rows_from_dicts
    from prunekit.report.summary import headline

    console = console or Console()
    for line in headline(report):
        console.print(f"[{LEVEL_STYLE[line.level]}]{line.text}[/]", highlight=False,
                      soft_wrap=True)
    if report.get("comparison"):
        console.print(summary_table(report["comparison"]))
    if report.get("layers"):
        console.print(layer_table(rows_from_dicts(report["layers"]), max_rows=max_rows))
