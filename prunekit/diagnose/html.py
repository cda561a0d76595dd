"""The diagnosis as an HTML fragment for the run page (:func:`prunekit.report.render_html`).

Self-contained (no scripts, images inlined as base64) and every string HTML-escaped.
Use ``render_html(report, images, sections={"Redundancy": diagnosis_html(d)})``.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any

from prunekit.diagnose.records import Diagnosis, table_cells

_HEADERS = ("layer", "kind", "channels", "|cos| w", "|corr| w", "|cos| a", "|corr| a",
            "dup w", "erank", "99% rank", "dead")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: tuple[str, ...], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def diagnosis_html(diagnosis: Diagnosis, images: Mapping[str, bytes] | None = None) -> str:
    """Tables of the layer and group records, the settings, notes and optional PNGs."""
    cfg = diagnosis.config
    parts = [f'<p class="note">mean |S| over channel pairs; "dup w": channels with an '
             f"earlier twin of weight cosine ≥ {_e(cfg.get('threshold', ''))}; erank: "
             f"exp(entropy of normalized singular values) of the "
             f"{'centered ' if cfg.get('center', True) else ''}activations; dead: "
             f"max|a| ≤ {_e(cfg.get('dead_tol', ''))} on {_e(cfg.get('batches', '?'))} "
             "calibration batches.</p>"]
    for title, recs in (("Layers", diagnosis.layers), ("Groups", diagnosis.groups)):
        if recs:
            parts += [f"<h3>{title}</h3>", _table(_HEADERS, [table_cells(r) for r in recs])]
    for note in diagnosis.notes:
        parts.append(f'<p class="note">{_e(note)}</p>')
    for name, png in (images or {}).items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<h3>{_e(name)}</h3><img alt="{_e(name)}" '
                     f'src="data:image/png;base64,{data}">')
    return "\n".join(parts)


def sweep_html(result: Any, image: bytes | None = None) -> str:
    """One row per λ (accuracy, groups kept, similarity, erank) and the collapse point."""
    rows = []
    for r in result.records:
        m = r.measures()
        rows.append([f"{r.lam:.3g}", f"{r.accuracy:.4f}", f"{r.groups_kept}/{r.groups_total}",
                     _f(m["weight_cosine_mean_abs"]), _f(m["act_correlation_mean_abs"]),
                     _f(m["erank_ratio"]), _f(m["dead_fraction"])])
    table = _table(("λ", "accuracy", "groups kept", "|cos| w", "|corr| a", "erank / width",
                    "dead"), rows)
    note = (f'<p class="note">collapse point (accuracy more than {result.collapse_drop:.3g} '
            f"below λ={result.records[0].lam:.3g}): {_e(result.collapse_lam)}; largest λ "
            f"before it: {result.safe_lam:.3g}</p>")
    img = ""
    if image is not None:
        data = base64.b64encode(image).decode("ascii")
        img = f'<img alt="λ sweep" src="data:image/png;base64,{data}">'
    return table + note + img


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
