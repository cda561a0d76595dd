"""PNG plots of a diagnosis and of a λ sweep (matplotlib imported only when drawing).

Figures use ``matplotlib.figure.Figure`` (the Agg canvas), never pyplot's global state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prunekit.diagnose.records import Diagnosis, LayerRecord


def _figure(rows: int, size: tuple[float, float]) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110, layout="constrained")
    return fig, fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]


def _value(summary: Any) -> float:
    return float("nan") if summary is None or summary.mean_abs is None else summary.mean_abs


def plot_diagnosis(diagnosis: Diagnosis, path: str | Path, kind: str = "layers",
                   title: str | None = None) -> Path:
    """Per-layer bars: similarity (mean |S| of weights and activations), erank / width,
    dead and never-positive fractions. ``kind``: "layers" or "groups"."""
    recs: list[LayerRecord] = diagnosis.layers if kind == "layers" else diagnosis.groups
    if kind not in ("layers", "groups"):
        raise ValueError(f"kind must be 'layers' or 'groups', got {kind!r}")
    fig, axes = _figure(3, (max(6.0, 0.45 * len(recs) + 2.5), 7.5))
    x = list(range(len(recs)))
    width = 0.2
    sims = (("weight_cosine", "|cos| weights"), ("weight_correlation", "|corr| weights"),
            ("act_cosine", "|cos| activations"), ("act_correlation", "|corr| activations"))
    for k, (key, label) in enumerate(sims):
        axes[0].bar([i + (k - 1.5) * width for i in x], [_value(getattr(r, key)) for r in recs],
                    width, label=label)
    axes[0].set_ylabel("mean |similarity|")
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(fontsize=7, ncol=4)
    axes[1].bar(x, [r.erank_ratio if r.erank_ratio is not None else float("nan")
                    for r in recs], color="#2e86c1")
    axes[1].set_ylabel("erank / width")
    axes[1].set_ylim(0, 1.05)
    axes[2].bar([i - 0.2 for i in x], [_nan(r.dead_fraction) for r in recs], 0.4,
                color="#c0392b", label="dead (max|a| ≤ tol)")
    axes[2].bar([i + 0.2 for i in x], [_nan(r.never_positive_fraction) for r in recs], 0.4,
                color="#e59866", label="never positive")
    axes[2].set_ylabel("fraction of channels")
    axes[2].set_ylim(0, 1.05)
    axes[2].legend(fontsize=7)
    names = [f"{r.name} ({r.channels})" if kind == "groups" else
             f"{r.name} ({r.kind}, {r.channels})" for r in recs]
    axes[2].set_xticks(x, names, rotation=60, fontsize=7, ha="right")
    axes[0].set_title(title or f"Redundancy per {kind[:-1]}")
    fig.savefig(str(path), format="png")
    return Path(path)


def plot_sweep(result: Any, path: str | Path, title: str | None = None) -> Path:
    """Accuracy, groups kept, mean similarity and erank against λ (symlog x axis, so
    λ = 0 is shown); the collapse point is a red dashed line."""
    lams = [r.lam for r in result.records]
    fig, axes = _figure(4, (7.0, 9.0))
    series = [
        (axes[0], [("accuracy", "accuracy")], "accuracy"),
        (axes[1], [("kept_fraction", "channel groups kept")], "fraction kept"),
        (axes[2], [("weight_cosine_mean_abs", "|cos| weights"),
                   ("act_correlation_mean_abs", "|corr| activations"),
                   ("act_cosine_mean_abs", "|cos| activations")], "mean |S| over groups"),
        (axes[3], [("erank_ratio", "erank / width"), ("dead_fraction", "dead fraction")],
         "fraction (groups)"),
    ]
    for ax, keys, ylabel in series:
        for key, label in keys:
            ax.plot(lams, [_nan(v) for v in result.series(key)], "o-", label=label)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    erank_ax = axes[3].twinx()
    erank_ax.plot(lams, [_nan(v) for v in result.series("erank")], "s--", color="#7d3c98",
                  label="mean erank")
    erank_ax.set_ylabel("mean erank (channels)")
    erank_ax.legend(fontsize=7, loc="lower left")
    positive = [v for v in lams if v > 0]
    if positive:
        for ax in axes:
            ax.set_xscale("symlog", linthresh=min(positive))
    collapse = result.collapse_lam
    if collapse is not None:
        for ax in axes:
            ax.axvline(collapse, color="#c0392b", ls="--", lw=1)
        axes[0].annotate(f"collapse λ={collapse:.3g}", (collapse, result.reference_accuracy),
                         fontsize=8, color="#c0392b", textcoords="offset points",
                         xytext=(4, -12))
    axes[3].set_xlabel("λ (symlog)")
    axes[0].set_title(title or "λ sweep: redundancy removed vs capacity collapse")
    fig.savefig(str(path), format="png")
    return Path(path)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
