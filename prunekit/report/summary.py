"""The lines a practitioner reads first: did the run work, was the target met, what it cost.

:func:`headline` turns a report dict (``build_report``, or a saved ``report.json``) into
short lines, each with a level — ``"fail"`` (red: a failed check, a missed target),
``"warn"`` (timings not stable, a target met only within noise), ``"ok"``, ``"info"`` —
that the terminal (:func:`prunekit.report.print_report`) and the HTML page both show above
everything else. Every part is optional: a report without checks, target or accuracy simply
has fewer lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prunekit.measure.display import (
    format_speedup,
    format_target,
    latency_flags,
    speedup_verdict,
    target_met,
)
from prunekit.report.table import human


@dataclass(frozen=True)
class Line:
    """One summary line; ``level`` is ``"fail"``, ``"warn"``, ``"ok"`` or ``"info"``."""

    level: str
    text: str


def target_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The run's target: ``report["target"]``, else the recipe's ``target`` in the config
    (``{"speedup": 2.0}``, ``{"macs": 0.4}`` or ``{"ratio": 0.5}``; empty when none)."""
    target = report.get("target") or (report.get("config") or {}).get("recipe", {}).get(
        "target") or {}
    return {k: v for k, v in dict(target).items() if v is not None}


def chance_of(report: Mapping[str, Any]) -> tuple[float, str] | None:
    """The accuracy of guessing, and where it comes from: the run checks' measured chance
    level, else ``report["accuracy_chance"]``, else ``1/k`` for a last layer of width ``k``
    (a classifier's class count, balanced classes assumed). None without accuracies."""
    checks = report.get("checks")
    models = checks.get("models", {}) if isinstance(checks, Mapping) else {}
    for role in ("pruned", "dense"):
        chance = (models.get(role) or {}).get("chance")
        if chance is not None:
            return float(chance), "chance level of the test labels"
    if report.get("accuracy_chance") is not None:
        return float(report["accuracy_chance"]), "chance level"
    if not (report.get("comparison") or {}).get("accuracy_dense"):
        return None
    widths = [r.get("width_before") for r in report.get("layers") or [] if r.get("macs_before")]
    if widths and widths[-1] and widths[-1] >= 2:
        return 1.0 / widths[-1], f"1/{widths[-1]}: one over the output width"
    return None


def check_lines(report: Mapping[str, Any]) -> list[Line]:
    """Run checks (collapse guards): one red line per failure, or one line saying they
    passed. Accepts ``report["checks"]`` as ``{"status", "ok", "failures"}`` or a list of
    ``{"name", "ok", "message"}``, and top-level ``ok`` / ``failures``."""
    checks = report.get("checks")
    failures, status, ok = list(report.get("failures") or []), None, report.get("ok")
    if isinstance(checks, Mapping):
        failures += list(checks.get("failures") or [])
        status, ok = checks.get("status"), checks.get("ok", ok)
    elif isinstance(checks, list):
        failures += [c.get("message") or c.get("name") for c in checks if not c.get("ok", True)]
        ok = ok if ok is not None else not failures
    texts = [f if isinstance(f, str) else str(f.get("message") or f) for f in failures]
    if texts:
        if status == "allowed":
            return [Line("warn", f"check failed (allowed): {t}") for t in texts]
        return [Line("fail", f"FAILED: {t}") for t in texts]
    if ok is False:
        return [Line("fail", "FAILED: the run's checks did not pass")]
    if ok or status == "passed":
        return [Line("ok", "checks passed: no collapse (accuracy above chance, outputs vary, "
                           "no all-zero layer)")]
    return []


def target_lines(report: Mapping[str, Any]) -> list[Line]:
    """Whether the target was met, by measurement (speed) or by count (MACs), and whether
    accuracy stayed within ``max_accuracy_drop`` of dense when the target sets one."""
    return _size_target(report) + _accuracy_target(report)


def _accuracy_target(report: Mapping[str, Any]) -> list[Line]:
    allowed, c = target_of(report).get("max_accuracy_drop"), report.get("comparison") or {}
    dense, pruned = c.get("accuracy_dense"), c.get("accuracy_pruned")
    if allowed is None or dense is None or pruned is None:
        return []
    met = dense - pruned <= float(allowed) + 1e-12
    return [Line("ok" if met else "fail",
                 f"accuracy within {float(allowed) * 100:g} pt of dense "
                 f"{'met' if met else 'missed'}: {dense:.2%} → {pruned:.2%} "
                 f"({(pruned - dense) * 100:+.2f} pt)")]


def _size_target(report: Mapping[str, Any]) -> list[Line]:
    target, c = target_of(report), report.get("comparison") or {}
    if "speedup" in target:
        interval = c.get("measured_speedup_interval")
        text = format_target(float(target["speedup"]), c.get("measured_speedup"), interval)
        met = target_met(float(target["speedup"]), c.get("measured_speedup"))
        level = "fail" if not met else ("warn" if "within noise" in text else "ok")
        return [Line(level, text + " — timed after fine-tuning, on the same inputs")]
    if "macs" in target and c.get("macs_dense"):
        kept = c["macs_pruned"] / c["macs_dense"]
        met = kept <= float(target["macs"]) + 1e-9
        return [Line("ok" if met else "fail",
                     f"target ≤ {float(target['macs']):.0%} of the MACs "
                     f"{'met' if met else 'missed'}: {kept:.1%} kept (theory, counted)")]
    if "ratio" in target:
        return [Line("info", f"target: remove {float(target['ratio']):.0%} of the channels "
                             "of every group")]
    return []


def speed_lines(c: Mapping[str, Any]) -> list[Line]:
    """The measured speedup with its interval, the MAC ratio (theory), ρ, and whether the
    timings can be trusted."""
    if not c or c.get("measured_speedup") is None:
        return []
    lat, interval = c.get("latency_dense") or {}, c.get("measured_speedup_interval")
    threads = lat.get("threads")
    where = (f"{lat.get('device', '?')}, {threads} thread{'s' * (threads != 1)}, "
             f"batch {lat.get('batch_size')}")
    text = f"speed: {format_speedup(c['measured_speedup'], interval)} ({where})"
    if c.get("mac_speedup_theoretical"):
        text += f"; {c['mac_speedup_theoretical']:.2f}× fewer MACs (theory)"
        if speedup_verdict(c["measured_speedup"], interval) != "no measurable difference":
            rho = c.get("rho_interval")
            text += f"; ρ {c['rho']:.2f}" + (f" ({rho[0]:.2f}–{rho[1]:.2f})" if rho else "")
    lines = [Line("info", text)]
    flags = {side: latency_flags(c.get(f"latency_{side}") or {}) for side in ("dense", "pruned")}
    if any(flags.values()):
        detail = "; ".join(f"{side}: {', '.join(f)}" for side, f in flags.items() if f)
        lines.append(Line("warn", f"timings not stable ({detail}) — the machine was busy or "
                                  "noisy; every sample is in report.json; rerun on a quiet "
                                  "machine"))
    return lines


def accuracy_lines(report: Mapping[str, Any]) -> list[Line]:
    """Accuracy dense → pruned in points, next to the chance level."""
    c = report.get("comparison") or {}
    dense, pruned = c.get("accuracy_dense"), c.get("accuracy_pruned")
    if dense is None or pruned is None:
        return []
    text = (f"accuracy: {dense:.2%} → {pruned:.2%} ({(pruned - dense) * 100:+.2f} pt, "
            f"{pruned / dense:.1%} kept)" if dense else f"accuracy: {dense} → {pruned}")
    if chance := chance_of(report):
        text += f"; chance {chance[0]:.1%}"
    return [Line("info", text)]


def size_lines(c: Mapping[str, Any]) -> list[Line]:
    if not c or not c.get("params_pruned"):
        return []
    return [Line("info", f"parameters: {human(c['params_dense'])} → {human(c['params_pruned'])}"
                         f" ({c['params_dense'] / c['params_pruned']:.2f}× smaller)")]


def headline(report: Mapping[str, Any]) -> list[Line]:
    """Every summary line of a report, most important first."""
    c = report.get("comparison") or {}
    return [*check_lines(report), *target_lines(report), *speed_lines(c),
            *accuracy_lines(report), *size_lines(c)]
