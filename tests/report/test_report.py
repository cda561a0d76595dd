"""Report: per-layer stats from a hand-pruned model, tables, plots, HTML, JSON round trip."""

import base64
import json
import re

import pytest
import torch
from rich.console import Console
from torch import nn

from prunekit.measure import compare
from prunekit.report import (
    build_report,
    layer_stats,
    layer_table,
    load_report,
    plan_summary,
    print_report,
    render_html,
    render_run,
    width_of,
    write_report,
)


def _cnn(c1, c2, blocks=True):
    layers = [nn.Conv2d(1, c1, 3), nn.BatchNorm2d(c1), nn.ReLU(), nn.Conv2d(c1, c2, 3), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c2 * 16, 10))
    if blocks:
        model.add_module("extra", nn.Identity())
    return model


@pytest.fixture(scope="module")
def pair():
    dense, pruned = _cnn(16, 32), _cnn(8, 12, blocks=False)
    return dense, pruned, torch.randn(2, 1, 8, 8)


def test_layer_stats_before_after(pair):
    dense, pruned, x = pair
    rows = {r.name: r for r in layer_stats(dense, pruned, x)}
    conv = rows["3"]
    assert (conv.width_before, conv.width_after) == (32, 12)
    assert (conv.params_before, conv.params_after) == (16 * 32 * 9 + 32, 8 * 12 * 9 + 12)
    assert (conv.macs_before, conv.macs_after) == (2 * 32 * 16 * 16 * 9, 2 * 12 * 16 * 8 * 9)
    assert conv.kept_width == pytest.approx(12 / 32)
    assert rows["1"].kind == "BatchNorm2d" and rows["1"].width_after == 8
    assert "extra" not in rows  # no parameters, no MACs
    assert sum(r.macs_before for r in rows.values()) > sum(r.macs_after for r in rows.values())


def test_removed_module_is_reported():
    dense = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4)))
    pruned = nn.Sequential(nn.Linear(4, 4))
    rows = {r.name: r for r in layer_stats(dense, pruned, torch.randn(1, 4))}
    assert rows["1.0"].removed and rows["1.0"].kept_width == 0.0
    assert not rows["0"].removed


def test_width_registry_and_fallback():
    assert width_of(nn.MultiheadAttention(8, 2)) == 2
    assert width_of(nn.LayerNorm(7)) == 7

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(5, 3))

    assert width_of(Custom()) == 5 and width_of(nn.ReLU()) is None


def test_layer_table_renders_arrows_and_removed(pair):
    dense, pruned, x = pair
    console = Console(record=True, width=140)
    console.print(layer_table(layer_stats(dense, pruned, x)))
    text = console.export_text()
    assert "32 → 12" in text and "16 → 8" in text and "BatchNorm2d" not in text


def test_plan_summary_from_dict():
    plan = {"groups": {"g0": [1, 2], "g1": []}, "cuts": [{}, {}, {}], "attrs": {"0": {"a": 1}}}
    summary = plan_summary(plan)
    assert summary["channels_removed"] == 2 and summary["groups_cut"] == 1
    assert summary["tensor_cuts"] == 3 and summary["removed_per_group"] == {"g0": 2}
    assert plan_summary(None) is None


def test_full_report_written_and_rerendered(pair, tmp_path):
    dense, pruned, x = pair
    comparison = compare(dense, pruned, x, eval_fn=lambda m: 0.9, repeats=2, rounds=2,
                         warmup=0, measure_energy=False)
    curves = {
        "accuracy_vs_compression": [{"compression": 1, "accuracy": 0.9, "label": "dense"},
                                    {"compression": 3, "accuracy": 0.88, "series": "prox"}],
        "regularization_path": {"x": [1e-4, 1e-3], "series": {"groups kept": [48, 20]}},
    }
    report = build_report("unit <run>", comparison, layer_stats(dense, pruned, x),
                          {"groups": {"g": [0]}}, {"model": "cnn"}, curves)
    written = write_report(tmp_path, report)
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["accuracy_vs_compression.png", "kept_width.png", "regularization_path.png",
                    "speedup.png"]
    for png in pngs:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = written["html"].read_text()
    assert "unit &lt;run&gt;" in page and "<script" not in page
    assert not re.search(r"src=\"(?!data:image/png;base64,)", page)  # nothing external
    embedded = re.findall(r"base64,([A-Za-z0-9+/=]+)", page)
    assert len(embedded) == 4 and base64.b64decode(embedded[0])[:4] == b"\x89PNG"
    loaded = load_report(tmp_path)
    assert loaded["comparison"]["accuracy_retention"] == pytest.approx(1.0)
    assert loaded["comparison"]["memory_dense"]["total_bytes"] > 0
    json.dumps(loaded)
    (tmp_path / "report.html").unlink()
    assert render_run(tmp_path)["html"].exists()
    console = Console(record=True, width=160)
    print_report(loaded, console)
    text = console.export_text()
    assert "ρ" in text and "theory" in text


def test_render_html_without_comparison_or_images():
    page = render_html({"title": "t", "layers": [], "plan_summary": None})
    assert page.startswith("<!doctype html>") and "No plan recorded" in page


def test_load_report_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a prunekit report"):
        load_report(tmp_path)
