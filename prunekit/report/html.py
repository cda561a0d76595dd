"""One self-contained HTML page per run: tables, the plan summary, PNGs embedded as base64.

The page reads top-down the way a practitioner asks: the summary first (failed checks in
red, the target met or missed, the measured speedup with its interval, accuracy dense →
pruned next to chance), then the dense-vs-pruned table, the plots, the layers (width,
parameters and MACs kept), and last the raw plan and configuration, collapsed.
No scripts, no external stylesheet or image: the file can be mailed or attached to a CI run
and opens anywhere. Every string from the run is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from prunekit.report.layers import rows_from_dicts
from prunekit.report.summary import headline
from prunekit.report.table import human, summary_caption, summary_rows

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f3f7} td:first-child,th:first-child{text-align:left}
.removed{color:#c0392b} img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
.note{color:#666;font-size:13px} pre{background:#f7f7f7;padding:1em;overflow-x:auto}
.summary p{margin:0.3em 0;font-size:16px} .fail{color:#c0392b;font-weight:bold}
.warn{color:#b9770e} .ok{color:#1e8449} details{margin:0.5em 0} summary{cursor:pointer}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_html(comparison: Mapping[str, Any]) -> str:
    rows = [[_e(cell) for cell in row] for row in summary_rows(dict(comparison))]
    note = _e(summary_caption(dict(comparison)))
    return _table(["metric", "dense", "pruned", "ratio"], rows) + f'<p class="note">{note}</p>'


def summary_lines_html(report: Mapping[str, Any]) -> str:
    """The headline lines (:func:`prunekit.report.summary.headline`), failures in red."""
    lines = headline(report)
    if not lines:
        return ""
    body = "".join(f'<p class="{_e(line.level)}">{_e(line.text)}</p>' for line in lines)
    return f'<div class="summary">{body}</div>'


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def layers_html(layers: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for row in rows_from_dicts(list(layers)):
        if not (row.macs_before or row.removed):
            continue
        after = ('<span class="removed">removed</span>' if row.removed else None)
        rows.append([_e(row.name), _e(row.kind),
                     f"{_e(row.width_before)} → {after or _e(row.width_after)}",
                     f"{human(row.params_before)} → {after or human(row.params_after)}",
                     f"{human(row.macs_before)} → {after or human(row.macs_after)}",
                     _pct(row.kept_width), _pct(row.kept_params), _pct(row.kept_macs)])
    return _table(["layer", "type", "width", "params", "MACs", "width kept", "params kept",
                   "MACs kept"], rows)


def _details(label: str, data: Any) -> str:
    return (f"<details><summary>{_e(label)}</summary>"
            f"<pre>{_e(json.dumps(data, indent=1, default=str))}</pre></details>")


def plan_html(plan_summary: Mapping[str, Any] | None) -> str:
    """One visible line (channels, groups, cuts), the plan's notes, the raw plan collapsed."""
    if not plan_summary:
        return "<p>No plan recorded.</p>"
    head = (f"<p>{_e(plan_summary.get('channels_removed', 0))} channels removed in "
            f"{_e(plan_summary.get('groups_cut', 0))} groups, "
            f"{_e(plan_summary.get('tensor_cuts', 0))} tensor cuts"
            + (f"; {len(plan_summary['structures'])} structure plan(s)"
               if plan_summary.get("structures") else "") + ".</p>")
    notes = "".join(f"<li>{_e(n)}</li>" for n in plan_summary.get("notes") or [])
    return (head + (f"<ul>{notes}</ul>" if notes else "")
            + _details("the plan, per group (JSON)", plan_summary))


def image_html(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<h3>{_e(name)}</h3><img alt="{_e(name)}" src="data:image/png;base64,{data}">'


def render_html(report: Mapping[str, Any], images: Mapping[str, bytes] | None = None,
                sections: Mapping[str, str] | None = None) -> str:
    """The whole page for a report dict (see ``build_report``) and PNG bytes by title.

    ``sections`` adds pre-rendered HTML fragments by heading, after the layers (e.g.
    ``{"Redundancy": prunekit.diagnose.diagnosis_html(d)}``); fragments must escape their text.
    """
    title = report.get("title", "prunekit run")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>",
             f'<p class="note">{_e(report.get("created", ""))}</p>',
             summary_lines_html(report)]
    if report.get("comparison"):
        parts += ["<h2>Dense vs pruned</h2>", summary_html(report["comparison"])]
    for name, png in (images or {}).items():
        parts.append(image_html(name, png))
    if report.get("layers"):
        parts += ["<h2>Layers</h2>", layers_html(report["layers"])]
    for heading, fragment in (sections or {}).items():
        parts += [f"<h2>{_e(heading)}</h2>", fragment]
    parts += ["<h2>Plan</h2>", plan_html(report.get("plan_summary"))]
    if report.get("config"):
        parts += ["<h2>Configuration</h2>",
                  _details("recipe, versions and options (JSON)", report["config"])]
    if report.get("checks"):
        parts.append(_details("run checks (JSON)", report["checks"]))
    parts.append("</body></html>")
    return "\n".join(parts)
