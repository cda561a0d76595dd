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

from prunekit.measure.display import speedup_verdict
from prunekit.report import plots
from prunekit.report.html import render_html
from prunekit.report.layers import LayerRow, rows_from_dicts
from prunekit.report.summary import chance_of, target_of

REPORT_FORMAT = "prunekit.report"
REPORT_VERSION = 2  # 2: timing stability, speedup interval, target, chance, kept params/MACs


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
    target: Mapping[str, Any] | None = None,
    chance: float | None = None,
) -> dict[str, Any]:
    """Plain, JSON-ready report data.

    ``comparison`` is a ``Comparison`` (or its dict); ``curves`` optional plot data:
    ``accuracy_vs_compression`` (points), ``speedup`` (points) and
    ``regularization_path`` (``{"x": [...], "xlabel": str, "series": {name: [...]}}``).
    ``target`` (e.g. ``{"speedup": 2.0}`` or ``{"macs": 0.4}``; default: the recipe's in
    ``config``) is what the summary says was met or missed; ``chance`` the accuracy of
    guessing, drawn on the accuracy plot (default: see :func:`~prunekit.report.summary.
    chance_of`). A run's collapse checks go under ``"checks"`` (``status``, ``ok``,
    ``failures``); the summary shows each failure as a red line.
    """
    if comparison is not None and hasattr(comparison, "to_dict"):
        comparison = comparison.to_dict()
    return {
        "format": REPORT_FORMAT, "version": REPORT_VERSION, "title": title,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "comparison": comparison, "layers": [r.to_dict() for r in layers or []],
        "plan_summary": plan_summary(plan), "config": dict(config or {}),
        "curves": dict(curves or {}), "target": dict(target or {}) or None,
        "accuracy_chance": chance,
    }


def _speedup_points(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    points = list(report.get("curves", {}).get("speedup", []))
    c = report.get("comparison")
    if not points and c and c.get("measured_speedup") and c.get("mac_speedup_theoretical"):
        interval = c.get("measured_speedup_interval")
        verdict = speedup_verdict(c["measured_speedup"], interval)
        label = (f"pruned (ρ={c['rho']:.2f})" if verdict != "no measurable difference"
                 else "pruned (no measurable difference)")
        pruned = {"theoretical": c["mac_speedup_theoretical"], "measured": c["measured_speedup"],
                  "label": label}
        if interval:
            pruned["low"], pruned["high"] = interval
        points = [{"theoretical": 1.0, "measured": 1.0, "label": "dense"}, pruned]
    return points


def _plot_jobs(report: Mapping[str, Any]) -> dict[str, tuple[str, Callable[[Path], Path]]]:
    """``{title: (file name, draw(path))}`` for every plot the report has data for."""
    jobs: dict[str, tuple[str, Callable[[Path], Path]]] = {}
    curves = report.get("curves", {})
    if report.get("layers"):
        rows = rows_from_dicts(report["layers"])
        jobs["Kept per layer: width, parameters, MACs"] = (
            "kept_width.png", lambda p: plots.plot_kept_width(rows, p))
    if curves.get("accuracy_vs_compression"):
        points = curves["accuracy_vs_compression"]
        chance = chance_of(report)
        dense = (report.get("comparison") or {}).get("accuracy_dense")
        jobs["Accuracy vs compression"] = (
            "accuracy_vs_compression.png", lambda p: plots.plot_accuracy_vs_compression(
                points, p, chance=chance and chance[0], dense=dense))
    if curves.get("regularization_path"):
        path = curves["regularization_path"]
        jobs["Regularization path"] = ("regularization_path.png", lambda p: (
            plots.plot_regularization_path(path["x"], path["series"], p,
                                           path.get("xlabel", "λ"), path.get("log_x", True))))
    if speedup := _speedup_points(report):
        target = target_of(report).get("speedup")
        jobs["Measured vs theoretical speedup"] = (
            "speedup.png", lambda p: plots.plot_speedup(speedup, p, target=target))
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
    return upgrade(data)


def upgrade(report: dict[str, Any]) -> dict[str, Any]:
    """A report written before version 2 with the newer derived fields recomputed from what
    it saved (every timing sample is in it): each latency's spread, stability and
    clusters, the speedup interval and verdict, ρ's interval, kept params and MACs."""
    c = report.get("comparison")
    if report.get("version", 1) >= REPORT_VERSION or not isinstance(c, dict):
        return report
    from prunekit.measure.comparison import speedup_interval
    from prunekit.measure.timing import judge

    sides = [c.get(f"latency_{side}") for side in ("dense", "pruned")]
    if all(isinstance(s, dict) and s.get("samples_ms") for s in sides):
        for side, stats in zip(("dense", "pruned"), sides, strict=True):
            c[f"latency_{side}"] = {**judge(stats["samples_ms"]), **stats}
        interval = speedup_interval(sides[0]["samples_ms"], sides[1]["samples_ms"])
        c["measured_speedup_interval"] = list(interval)
        c["speedup_verdict"] = speedup_verdict(c.get("measured_speedup"), interval)
        if c.get("mac_speedup_theoretical"):
            c["rho_interval"] = [v / c["mac_speedup_theoretical"] for v in interval]
    report["layers"] = [r.to_dict() for r in rows_from_dicts(report.get("layers") or [])]
    return report


def render_run(directory: str | Path) -> dict[str, Path]:
    """Re-render the plots and HTML page of a saved run from its ``report.json``."""
    return write_report(directory, load_report(directory))
