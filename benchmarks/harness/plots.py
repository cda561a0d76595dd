"""Plot helpers: a headless pyplot and one way to save a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (folders created), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def accuracy_curves(series: dict[str, list[dict]], dense_accuracy: float,
                    panels: tuple[tuple[str, str], ...], title: str, path: Path,
                    figsize: tuple[float, float], x: Any = None) -> Path:
    """One panel per ``(key, xlabel)``: test accuracy (%) against ``x(row, key)`` (log
    axis; default ``row[key]``), one line per series (names starting with "Torch" dashed),
    the dense accuracy dotted."""
    plt = pyplot()
    x = x or (lambda row, key: row[key])
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for (key, xlabel), ax in zip(panels, axes[0]):
        for label, pts in series.items():
            pts = sorted(pts, key=lambda r: x(r, key))
            ax.plot([x(r, key) for r in pts], [100 * r["accuracy"] for r in pts],
                    "s--" if label.startswith("Torch") else "o-", label=label)
        ax.axhline(100 * dense_accuracy, ls=":", c="gray", label="dense")
        ax.set(xscale="log", xlabel=xlabel, ylabel="test accuracy (%)", title=title)
    axes[0][0].legend(fontsize=6)
    return save(fig, path, dpi=120)
