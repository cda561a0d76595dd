"""Show what pruning did: rich tables, JSON, PNG plots and one self-contained HTML page.

matplotlib is imported only when a plot is drawn.
"""

from prunekit.report.document import (
    build_report,
    load_report,
    plan_summary,
    render_run,
    write_report,
)
from prunekit.report.html import render_html
from prunekit.report.layers import LayerRow, layer_stats, register_width, width_of
from prunekit.report.plots import (
    plot_accuracy_vs_compression,
    plot_kept_width,
    plot_regularization_path,
    plot_speedup,
)
from prunekit.report.summary import Line, headline
from prunekit.report.table import layer_table, print_report, summary_table

__all__ = [
    "LayerRow",
    "Line",
    "build_report",
    "headline",
    "layer_stats",
    "layer_table",
    "load_report",
    "plan_summary",
    "plot_accuracy_vs_compression",
    "plot_kept_width",
    "plot_regularization_path",
    "plot_speedup",
    "print_report",
    "register_width",
    "render_html",
    "render_run",
    "summary_table",
    "width_of",
    "write_report",
]
