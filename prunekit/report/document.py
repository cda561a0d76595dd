"""A run's report as data (``report.json``), its plots and its HTML page, written together.

``build_report`` gathers plain data; ``write_report`` renders PNGs and the HTML page next
to the JSON; ``render_run`` re-renders a saved run directory from its ``report.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prunekit.report import plots
from prunekit.report.html import render_html
from prunekit.report.layers import LayerRow, rows_from_dicts

REPORT_FORMAT = "prunekit.report"
REPORT_VERSION = 1


def plan_summary(plan: Any) -> dict[str, Any] | None:
    """Channels removed per group, number of tensor cuts, changed attributes, notes.

    Accepts a surgery ``Plan`` (anything with ``to_dict``) or its dict form, or a list of
    plans applied in order (channel and structure plans, e.g. depth): the channel parts
    are summed and each structure plan is listed under ``"structures"``.
    """
    if plan is None:
        return None
    if isinstance(plan, list | tuple):
        items = [p.to_dict() if hasattr(p, "to_dict") else dict(p) for p in plan]
        channel = [d for d in items if "structure" not in d]
        merged: dict[str, Any] = {"groups": {}, "cuts": [], "attrs": {}, "notes": []}
        for d in channel:
            for k, v in d.get("groups", {}).items():
                merged["groups"][k] = merged["groups"].get(k, []) + list(v)
            merged["cuts"] += d.get("cuts", [])
            merged["attrs"].update(d.get("attrs", {}))
            merged["notes"] += d.get("notes", [])
        out = plan_summary(merged) or {}
        out["structures"] = [{k: v for k, v in d.items() if k in ("structure", "removed")}
                             for d in items if "structure" in d]
        return out
    data = plan.to_dict() if hasattr(plan, "to_dict") else dict(plan)
    groups = data.get("groups", {})
    return {
        "channels_removed": sum(len(v) for v in groups.values()),
        "groups_cut": sum(bool(v) for v in groups.values()),
        "removed_per_group": {k: len(v) for k, v in groups.items() if v},
        "tensor_cuts": len(data.get("cuts", [])),
        "changed_attributes": data.get("attrs", {}),
        "notes": data.get("notes", []),
    }


def build_report(
    title: str,
    comparison: Any = None,
    layers: Sequence[LayerRow] | None = None,
    plan: Any = None,
    config: Mapping[str, Any] | None = None,
    curves: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Plain, JSON-ready report data.

    ``comparison`` is a ``Comparison`` (or its dict); ``curves`` optional plot data:
    ``accuracy_vs_compression`` (points), ``speedup`` (points) and
    ``regularization_path`` (``{"x": [...], "xlabel": str, "series": {name: [...]}}``).
    """
    if comparison is not None and hasattr(comparison, "to_dict"):
        comparison = comparison.to_dict()
    return {
        "format": REPORT_FORMAT, "version": REPORT_VERSION, "title": title,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "comparison": comparison, "layers": [r.to_dict() for r in layers or []],
        "plan_summary": plan_summary(plan), "config": dict(config or {}),
        "curves": dict(curves or {}),
    }


def _speedup_points(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    points = list(report["curves"].get("speedup", []))
    c = report.get("comparison")
    if not points and c and c.get("measured_speedup") and c.get("mac_speedup_theoretical"):
        points = [{"theoretical": 1.0, "measured": 1.0, "label": "dense"},
                  {"theoretical": c["mac_speedup_theoretical"], "measured": c["measured_speedup"],
                   "label": f"pruned (ρ={c['rho']:.2f})"}]
    return points


def _plot_jobs(report: Mapping[str, Any]) -> dict[str, tuple[str, Callable[[Path], Path]]]:
    """``{title: (file name, draw(path))}`` for every plot the report has data for."""
    jobs: dict[str, tuple[str, Callable[[Path], Path]]] = {}
    curves = report.get("curves", {})
    if report.get("layers"):
        rows = rows_from_dicts(report["layers"])
        jobs["Kept width per layer"] = ("kept_width.png", lambda p: plots.plot_kept_width(rows, p))
    if curves.get("accuracy_vs_compression"):
        points = curves["accuracy_vs_compression"]
        jobs["Accuracy vs compression"] = (
            "accuracy_vs_compression.png", lambda p: plots.plot_accuracy_vs_compression(points, p))
    if curves.get("regularization_path"):
        path = curves["regularization_path"]
        jobs["Regularization path"] = ("regularization_path.png", lambda p: (
            plots.plot_regularization_path(path["x"], path["series"], p,
                                           path.get("xlabel", "λ"), path.get("log_x", True))))
    if speedup := _speedup_points(report):
        jobs["Measured vs theoretical speedup"] = (
            "speedup.png", lambda p: plots.plot_speedup(speedup, p))
    return jobs


def write_report(directory: str | Path, report: Mapping[str, Any],
                 draw_plots: bool = True,
                 sections: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write ``report.json``, the PNG plots and ``report.html`` into ``directory``.

    A ``"diagnosis"`` entry (``Diagnosis.to_dict()`` from :func:`prunekit.diagnose.diagnose`)
    becomes a "Redundancy and collapse" section of the page, so ``prunekit report`` shows
    it again when re-rendering; ``sections`` adds more pre-rendered HTML by heading.
    Returns ``{"json": path, "html": path, <plot title>: path, ...}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = {"json": directory / "report.json"}
    written["json"].write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    images: dict[str, bytes] = {}
    for title, (name, draw) in (_plot_jobs(report) if draw_plots else {}).items():
        written[title] = draw(directory / name)
        images[title] = written[title].read_bytes()
    written["html"] = directory / "report.html"
    written["html"].write_text(render_html(report, images, _sections(report, sections)),
                               encoding="utf-8")
    return written


def _sections(report: Mapping[str, Any], extra: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if report.get("diagnosis"):
        from prunekit.diagnose import Diagnosis, diagnosis_html

        out["Redundancy and collapse"] = diagnosis_html(Diagnosis.from_dict(report["diagnosis"]))
    out.update(extra or {})
    return out


def load_report(directory: str | Path) -> dict[str, Any]:
    """Read ``report.json`` from a run directory; ValueError if absent or not a report."""
    path = Path(directory) / "report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read a report from {path}: {err}") from err
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ValueError(f"{path} is not a prunekit report (format tag missing)")
    return data


def render_run(directory: str | Path) -> dict[str, Path]:
    """Re-render the plots and HTML page of a saved run from its ``report.json``."""
    return write_report(directory, load_report(directory))
