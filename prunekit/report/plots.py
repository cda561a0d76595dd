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
    """Per compute layer, the fraction it kept of its width, its parameters and its MACs.

    Three bars, because width alone hides what cutting a layer's *inputs* does: a layer
    that keeps 97 % of its filters but 6 % of its input channels keeps 6 % of its weights.
    A removed layer is a red mark at 0."""
    shown = [r for r in rows if r.macs_before and r.kept_width is not None]
    with _figure(path, (max(6.0, 0.5 * len(shown) + 2), 4.2)) as ax:
        x = range(len(shown))
        for k, (name, values, color) in enumerate((
                ("width", [r.kept_width for r in shown], "#2e86c1"),
                ("parameters", [r.kept_params or 0.0 for r in shown], "#e67e22"),
                ("MACs", [r.kept_macs or 0.0 for r in shown], "#7f8c8d"))):
            ax.bar([i + (k - 1) * 0.27 for i in x], values, width=0.27, color=color, label=name)
        removed = [i for i, r in enumerate(shown) if r.removed]
        if removed:
            ax.scatter(removed, [0.02] * len(removed), marker="x", color="#c0392b", zorder=3,
                       label="removed")
        ax.set_xticks(list(x), [r.name for r in shown], rotation=70, fontsize=7, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("kept (after / before)")
        ax.set_title("Kept per layer: width, parameters, MACs")
        ax.legend(fontsize=8, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return Path(path)


def plot_accuracy_vs_compression(points: Sequence[Mapping[str, Any]], path: str | Path,
                                 chance: float | None = None,
                                 dense: float | None = None) -> Path:
    """Accuracy against compression (× fewer MACs), one labeled point each.

    ``points``: ``{"compression": float, "accuracy": float, "label": str}`` (label optional;
    points sharing a ``series`` key are joined by a line). ``chance`` and ``dense`` draw the
    chance level and the dense model's accuracy as horizontal lines. Accuracies in [0, 1]
    are drawn on a fixed [0, 1] axis (:func:`accuracy_limits`): an autoscaled axis turns
    0.1000 → 0.1022 (a collapsed model at chance) into what looks like a gain.
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
                    ax.annotate(f"{p['label']} {p['accuracy']:.1%}",
                                (p["compression"], p["accuracy"]), fontsize=8,
                                textcoords="offset points", xytext=(4, -12))
        if dense is not None:
            ax.axhline(dense, color="#27ae60", linestyle="--", linewidth=1,
                       label=f"dense {dense:.1%}")
        if chance is not None:
            ax.axhline(chance, color="#c0392b", linestyle=":", linewidth=1.2,
                       label=f"chance {chance:.1%}")
        if limits := accuracy_limits([p["accuracy"] for p in points], chance, dense):
            ax.set_ylim(*limits)
        ax.set_xlabel("compression (dense / pruned MACs)")
        ax.set_ylabel("accuracy")
        ax.set_title("Accuracy vs compression")
        if any(series) or chance is not None or dense is not None:
            ax.legend(fontsize=8, loc="lower left")
    return Path(path)


def accuracy_limits(accuracies: Sequence[float], chance: float | None = None,
                    dense: float | None = None) -> tuple[float, float] | None:
    """Y-axis of the accuracy plot: ``(0, 1.02)`` when every value is a fraction, so that
    noise is not magnified; otherwise the range of the values, chance and dense included
    (None: let matplotlib choose, nothing to draw)."""
    values = [*accuracies, *(v for v in (chance, dense) if v is not None)]
    if not values:
        return None
    if all(0 <= v <= 1 for v in values):
        return 0.0, 1.02
    lo, hi = min(0.0, *values), max(values)
    return lo, hi + 0.02 * (hi - lo or 1.0)


def speedup_errors(points: Sequence[Mapping[str, Any]]) -> list[list[float]]:
    """Asymmetric error bars ``[below, above]`` from each point's ``low``/``high`` interval
    (0 where a point has none)."""
    return [[max(0.0, p["measured"] - p.get("low", p["measured"])) for p in points],
            [max(0.0, p.get("high", p["measured"]) - p["measured"]) for p in points]]


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


def plot_speedup(points: Sequence[Mapping[str, Any]], path: str | Path,
                 target: float | None = None) -> Path:
    """Measured speedup against theoretical (MAC) speedup; the diagonal is ρ = 1.

    ``points``: ``{"theoretical": float, "measured": float, "label": str}``, with
    ``"low"``/``"high"`` (the measured speedup's interval) drawn as error bars. The line at
    1 is "no faster"; ``target`` draws the asked-for speedup.
    """
    with _figure(path, (5.0, 4.5)) as ax:
        theory = [p["theoretical"] for p in points]
        measured = [p["measured"] for p in points]
        highs = [p.get("high", p["measured"]) for p in points]
        top = max([1.0, *theory, *highs, target or 0.0]) * 1.1
        ax.plot([0, top], [0, top], "--", color="grey", label="ρ = 1 (all theory realized)")
        ax.axhline(1.0, color="#7f8c8d", linewidth=0.8, label="no faster than dense")
        if target is not None:
            ax.axhline(target, color="#c0392b", linestyle=":", label=f"target {target:g}×")
        ax.errorbar(theory, measured, yerr=speedup_errors(points), fmt="o", color="#2e86c1",
                    capsize=4, zorder=3, label="measured (95 % interval)")
        for p in points:
            if p.get("label"):
                ax.annotate(str(p["label"]), (p["theoretical"], p["measured"]), fontsize=8,
                            textcoords="offset points", xytext=(6, -4))
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("theoretical speedup (MAC ratio)")
        ax.set_ylabel("measured speedup (latency ratio)")
        ax.set_title("Measured vs theoretical speedup")
        ax.legend(fontsize=7, loc="upper left")
    return Path(path)
