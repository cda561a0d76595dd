"""One self-contained HTML page per run: tables, the plan summary, PNGs embedded as base64.

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
from prunekit.report.table import human, summary_caption, summary_rows

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f3f7} td:first-child,th:first-child{text-align:left}
.removed{color:#c0392b} img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
.note{color:#666;font-size:13px} pre{background:#f7f7f7;padding:1em;overflow-x:auto}
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


def layers_html(layers: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for row in rows_from_dicts(list(layers)):
        if not (row.macs_before or row.removed):
            continue
        after = ('<span class="removed">removed</span>' if row.removed else None)
        kept = row.kept_width
        rows.append([_e(row.name), _e(row.kind),
                     f"{_e(row.width_before)} → {after or _e(row.width_after)}",
                     f"{human(row.params_before)} → {after or human(row.params_after)}",
                     f"{human(row.macs_before)} → {after or human(row.macs_after)}",
                     "—" if kept is None else f"{kept:.0%}"])
    return _table(["layer", "type", "width", "params", "MACs", "kept"], rows)


def plan_html(plan_summary: Mapping[str, Any] | None) -> str:
    if not plan_summary:
        return "<p>No plan recorded.</p>"
    return f"<pre>{_e(json.dumps(plan_summary, indent=1))}</pre>"


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
             f'<p class="note">{_e(report.get("created", ""))}</p>']
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
                  f"<pre>{_e(json.dumps(report['config'], indent=1, default=str))}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts)
