"""The report a practitioner reads: summary first, failures in red, honest speed, axes that
do not magnify noise, raw data collapsed, every layer's parameters and MACs kept."""

import copy
import json
import re

import pytest
import torch
from rich.console import Console
from torch import nn

from prunekit.report import layer_stats, load_report, print_report, render_html, write_report
from prunekit.report.plots import accuracy_limits, speedup_errors
from prunekit.report.summary import chance_of, check_lines, headline, target_lines

SAMPLES_DENSE = [10.0, 10.2, 9.9, 10.1, 10.0, 10.3]
SAMPLES_PRUNED = [5.0, 5.1, 4.9, 5.05, 5.0, 5.2]


def _latency(samples, **extra):
    return {"median_ms": sorted(samples)[len(samples) // 2], "p25_ms": min(samples),
            "p75_ms": max(samples), "iqr_ms": max(samples) - min(samples),
            "samples_ms": samples, "device": "cpu", "threads": 1, "batch_size": 256,
            "spread": 0.03, "max_spread": 0.1, "stable": True, "bimodal": False,
            "clusters": [], "rounds": 4, **extra}


def _report(speedup=2.0, interval=(1.9, 2.1), target=None, checks=None, acc=(0.99, 0.985),
            **latency_extra):
    comparison = {
        "params_dense": 63000, "params_pruned": 10000, "macs_dense": 1000, "macs_pruned": 400,
        "bytes_dense": 1, "bytes_pruned": 1, "compression_ratio": 6.3,
        "mac_speedup_theoretical": 2.5, "measured_speedup": speedup,
        "measured_speedup_interval": None if interval is None else list(interval),
        "rho": speedup / 2.5, "rho_interval": None if interval is None else
        [v / 2.5 for v in interval], "accuracy_dense": acc[0], "accuracy_pruned": acc[1],
        "accuracy_retention": acc[1] / acc[0], "energy_source": "unavailable",
        "latency_dense": _latency(SAMPLES_DENSE),
        "latency_pruned": _latency(SAMPLES_PRUNED, **latency_extra),
    }
    layers = [{"name": "0", "kind": "Conv2d", "width_before": 16, "width_after": 8,
               "params_before": 144, "params_after": 72, "macs_before": 100, "macs_after": 50},
              {"name": "fc", "kind": "Linear", "width_before": 10, "width_after": 10,
               "params_before": 170, "params_after": 90, "macs_before": 160, "macs_after": 80}]
    return {"format": "prunekit.report", "version": 2, "title": "t", "comparison": comparison,
            "layers": layers, "plan_summary": {"channels_removed": 8, "groups_cut": 1,
                                               "tensor_cuts": 3, "notes": ["a note"],
                                               "removed_per_group": {"g": 8}},
            "config": {"recipe": {"target": target or {"speedup": 2.0, "macs": None}}},
            "curves": {}, **({"checks": checks} if checks is not None else {})}


def test_failed_checks_are_red_lines_first():
    report = _report(checks={"status": "failed", "ok": False,
                             "failures": ["the pruned model is at chance: accuracy 0.1022"]})
    lines = headline(report)
    assert lines[0].level == "fail" and lines[0].text.startswith("FAILED: the pruned model")
    page = render_html(report)
    assert '<p class="fail">FAILED: the pruned model is at chance' in page
    assert page.index('class="fail"') < page.index("Dense vs pruned")


@pytest.mark.parametrize("checks, level, start", [
    ({"status": "passed", "ok": True, "failures": []}, "ok", "checks passed"),
    ({"status": "allowed", "ok": True, "failures": ["x"]}, "warn", "check failed (allowed)"),
    ([{"name": "acc", "ok": False, "message": "at chance"}], "fail", "FAILED: at chance"),
])
def test_check_shapes(checks, level, start):
    (line,) = check_lines({"checks": checks})
    assert line.level == level and line.text.startswith(start)


def test_no_checks_no_line():
    assert check_lines({}) == []


@pytest.mark.parametrize("speedup, interval, level, word", [
    (2.1, (2.02, 2.2), "ok", "met"), (2.05, (1.8, 2.3), "warn", "met within noise"),
    (1.6, (1.5, 1.7), "fail", "missed"),
])
def test_speed_target_met_or_missed(speedup, interval, level, word):
    (line,) = target_lines(_report(speedup, interval))
    assert line.level == level and line.text.startswith(f"target 2× faster {word}: measured")


def test_mac_target_met_or_missed():
    assert target_lines(_report(target={"macs": 0.4}))[0].level == "ok"
    (line,) = target_lines(_report(target={"macs": 0.3}))
    assert line.level == "fail" and "40.0% kept" in line.text


def test_an_interval_holding_one_is_no_speedup_and_has_no_rho():
    report = _report(speedup=1.3, interval=(0.8, 2.9))
    speed = next(line.text for line in headline(report) if line.text.startswith("speed:"))
    assert "no measurable difference (95 % CI 0.800–2.90×)" in speed and "ρ" not in speed
    console = Console(record=True, width=200)
    print_report(report, console)
    text = console.export_text()
    assert "1.3× faster" not in text and "no measurable speedup" in text


def test_unstable_timings_are_a_warning_with_the_clusters():
    report = _report(bimodal=True, stable=False, spread=0.9,
                     clusters=[{"median_ms": 2.0, "count": 18}, {"median_ms": 176.0,
                                                                  "count": 12}])
    (warn,) = [line for line in headline(report) if line.text.startswith("timings")]
    assert warn.level == "warn"
    assert "pruned: bimodal: 18× near 2.00 ms, 12× near 176 ms" in warn.text


def test_accuracy_line_in_points_with_chance():
    report = _report(acc=(0.9956, 0.98))
    acc = next(line.text for line in headline(report) if line.text.startswith("accuracy"))
    assert "99.56% → 98.00% (-1.56 pt" in acc and "chance 10.0%" in acc  # 1/10 outputs
    report["checks"] = {"status": "passed", "ok": True, "failures": [],
                        "models": {"pruned": {"chance": 0.11}}}
    assert chance_of(report) == (0.11, "chance level of the test labels")


def test_raw_plan_and_config_are_collapsed():
    page = render_html(_report())
    visible = re.sub(r"<details>.*?</details>", "", page, flags=re.S)
    assert '"removed_per_group"' not in visible and '"recipe"' not in visible
    assert "8 channels removed in 1 groups, 3 tensor cuts" in visible
    assert "<li>a note</li>" in visible  # notes stay visible
    assert page.count("<details>") == 2


def test_layers_show_params_and_macs_kept_not_only_width():
    dense = nn.Sequential(nn.Conv2d(1, 64, 3), nn.Conv2d(64, 64, 3))
    pruned = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 62, 3))
    rows = {r.name: r for r in layer_stats(dense, pruned, torch.zeros(1, 1, 8, 8))}
    second = rows["1"]
    assert second.kept_width == pytest.approx(62 / 64)
    assert second.kept_params == pytest.approx((4 * 62 * 9 + 62) / (64 * 64 * 9 + 64))
    assert second.kept_macs == pytest.approx(4 * 62 / (64 * 64))
    report = _report()
    report["layers"] = [r.to_dict() for r in rows.values()]
    page = render_html(report)
    assert "params kept" in page and "<td>97%</td><td>6%</td><td>6%</td>" in page
    console = Console(record=True, width=200)
    print_report(report, console)
    assert "97% · 6% · 6%" in console.export_text()


def test_accuracy_axis_does_not_magnify_noise():
    assert accuracy_limits([0.1, 0.1022], chance=0.1, dense=0.1022) == (0.0, 1.02)
    lo, hi = accuracy_limits([12.0, 30.0])  # not fractions: still from 0
    assert lo == 0.0 and hi > 30.0
    assert accuracy_limits([]) is None


def test_speedup_error_bars_from_the_interval():
    points = [{"measured": 1.0}, {"measured": 2.0, "low": 1.5, "high": 2.6}]
    assert speedup_errors(points) == [[0.0, 0.5], [0.0, pytest.approx(0.6)]]


def test_written_report_has_error_bars_and_target_in_its_plot_data(tmp_path, monkeypatch):
    drawn = {}
    import prunekit.report.plots as plots

    real = plots.plot_speedup
    monkeypatch.setattr(plots, "plot_speedup", lambda points, path, target=None: (
        drawn.update(points=points, target=target), real(points, path, target))[1])
    write_report(tmp_path, _report())
    pruned = drawn["points"][1]
    assert (pruned["low"], pruned["high"]) == (1.9, 2.1) and drawn["target"] == 2.0


def test_old_reports_get_intervals_and_flags_from_their_samples(tmp_path):
    old = copy.deepcopy(_report(speedup=1.42, interval=None))
    old["version"] = 1
    bimodal = [2.0] * 6 + [176.0] * 4
    for side, samples in (("dense", SAMPLES_DENSE), ("pruned", bimodal)):
        stats = old["comparison"][f"latency_{side}"]
        for key in ("spread", "max_spread", "stable", "bimodal", "clusters", "rounds"):
            stats.pop(key)
        stats["samples_ms"] = samples
    del old["comparison"]["measured_speedup_interval"], old["comparison"]["rho_interval"]
    (tmp_path / "report.json").write_text(json.dumps(old))
    loaded = load_report(tmp_path)
    c = loaded["comparison"]
    assert c["measured_speedup_interval"] and c["latency_pruned"]["bimodal"] is True
    assert "rounds" not in c["latency_dense"]
    assert loaded["layers"][0]["kept_params"] == pytest.approx(0.5)


@pytest.mark.parametrize("acc, level, word", [((0.9956, 0.9911), "ok", "met"),
                                              ((0.9956, 0.98), "fail", "missed")])
def test_accuracy_drop_target(acc, level, word):
    report = _report(acc=acc)
    report["target"] = {"speedup": 2.0, "max_accuracy_drop": 0.01}
    lines = target_lines(report)
    assert lines[0].text.startswith("target 2× faster")
    assert lines[1].level == level
    assert lines[1].text.startswith(f"accuracy within 1 pt of dense {word}: 99.56% →")
