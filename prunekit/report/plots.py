"""PNG plots (matplotlib's Agg canvas, imported only when a plot is drawn).

Each function takes plain data and a path, writes one PNG and returns the path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from prunekit.report.layers import LayerRow


@contextlib.contextmanager
def _figure(path: str | Path, size: tuple[float, float] = (7.0, 4.0)) -> Iterator[Any]:
    """A fresh figure and axes saved to ``path`` on exit.

    ``matplotlib.figure.Figure`` renders PNG with the Agg canvas and never touches pyplot's
    global state or the user's GUI backend.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110, layout="constrained")
    ax = fig.subplots()
    yield ax
    fig.savefig(str(path), format="png")


def plot_kept_width(rows: Sequence[LayerRow], path: str | Path) -> Path:
    """Bar per compute layer: fraction of its width (channels, features, heads) kept."""
    shown = [r for r in rows if r.macs_before and r.kept_width is not None]
    with _figure(path, (max(6.0, 0.28 * len(shown) + 2), 4.0)) as ax:
        kept = [r.kept_width for r in shown]
        colors = ["#c0392b" if k == 0 else "#2e86c1" for k in kept]
        ax.bar(range(len(shown)), kept, color=colors)
        ax.set_xticks(range(len(shown)), [r.name for r in shown], rotation=70, fontsize=7,
                      ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("kept width (after / before)")
        ax.set_title("Width kept per layer (red: removed)")
    return Path(path)


def plot_accuracy_vs_compression(points: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Accuracy against compression (× fewer parameters or MACs), one labeled point each.

    ``points``: ``{"compression": float, "accuracy": float, "label": str}`` (label optional;
    points sharing a ``series`` key are joined by a line).
    """
    with _figure(path) as ax:
        series: dict[str, list[Mapping[str, Any]]] = {}
        for point in points:
            series.setdefault(str(point.get("series", "")), []).append(point)
        for name, pts in series.items():
            pts = sorted(pts, key=lambda p: p["compression"])
            ax.plot([p["compression"] for p in pts], [p["accuracy"] for p in pts], "o-",
                    label=name or None)
            for p in pts:
                if p.get("label"):
                    ax.annotate(str(p["label"]), (p["compression"], p["accuracy"]), fontsize=8,
                                textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel("compression (dense / pruned MACs)")
        ax.set_ylabel("accuracy")
        ax.set_title("Accuracy vs compression")
        if any(series):
            ax.legend(fontsize=8)
    return Path(path)


def plot_regularization_path(x: Sequence[float], series: Mapping[str, Sequence[float]],
                             path: str | Path, xlabel: str = "λ", log_x: bool = True) -> Path:
    """Curves against the regularization strength (or training step): e.g. groups kept,
    MAC fraction, per-group norms."""
    with _figure(path) as ax:
        for name, values in series.items():
            ax.plot(list(x), list(values), label=name)
        if log_x and all(v > 0 for v in x):
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title("Regularization path")
        ax.legend(fontsize=8)
    return Path(path)


def plot_speedup(points: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Measured speedup against theoretical (MAC) speedup; the diagonal is ρ = 1.

    ``points``: ``{"theoretical": float, "measured": float, "label": str}``.
    """
    with _figure(path, (5.0, 4.5)) as ax:
        theory = [p["theoretical"] for p in points]
        measured = [p["measured"] for p in points]
        top = max([1.0, *theory, *measured]) * 1.1
        ax.plot([0, top], [0, top], "--", color="grey", label="ρ = 1 (all theory realized)")
        ax.scatter(theory, measured, color="#2e86c1", zorder=3)
        for p in points:
            if p.get("label"):
                ax.annotate(str(p["label"]), (p["theoretical"], p["measured"]), fontsize=8,
                            textcoords="offset points", xytext=(4, 4))
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("theoretical speedup (MAC ratio)")
        ax.set_ylabel("measured speedup (latency ratio)")
        ax.set_title("Measured vs theoretical speedup")
        ax.legend(fontsize=8, loc="upper left")
    return Path(path)
