"""The realized-speedup benchmark's smoke mode runs end to end (no timing asserts)."""

from __future__ import annotations

import json

import pytest
from support import load_benchmark


@pytest.fixture
def bench():
    return load_benchmark("realized_speedup")


def test_smoke_writes_rows_with_measurements(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "speedup.json"
    md = tmp_path / "speedup.md"
    doc = bench.main(["--smoke", "--out", str(out), "--floor", "--width-or-depth",
                      "--markdown", str(md)])
    saved = json.loads(out.read_text())
    assert saved["machine"]["torch"] and saved["machine"]["torch_pruning"]
    assert saved["device"]["threads"] == 2 and len(saved["load_avg_start"]) == 3
    (row,) = saved["rows"]
    assert row["model"] == "tiny" and row["target"] == 1.5 and row["multiple"] == 8
    assert set(row["ms"]) == {"dense", "prunekit", "torch_pruning", "width_floor",
                              "prunekit_wd"}, row.get("tp_error")
    # the floor cuts every group by 0.9: far fewer MACs than any searched plan
    assert row["floor_macs_ratio"] > row["macs_ratio"]
    assert row["floor_rho"] == pytest.approx(row["floor_speedup"] / row["floor_macs_ratio"])
    # the tiny model has no residual block: the width-or-depth chooser can only pick width
    assert row["wd_kind"] == "width" and [c["kind"] for c in row["wd_candidates"]] == ["width"]
    assert row["wd_macs_ratio"] >= 1.0 and row["wd_prune_s"] > 0
    assert saved["config"]["prefer"] == "macs" and row["wd_candidates"][0]["seconds"] > 0
    # on a busy machine the search may (rightly) back off; either way it says so
    assert row["macs_ratio"] > 1.0 if row["met"] else (row["macs_ratio"] >= 1.0
                                                        and row["notes"])
    # Torch-Pruning is matched to our MACs from below (nothing to match when we backed off)
    assert row["tp_macs_ratio"] > 1.0 if row["macs_ratio"] > 1.0 else row["tp_macs_ratio"] >= 1.0
    assert row["rho"] == pytest.approx(row["speedup"] / row["macs_ratio"])
    assert row["speedup"] == pytest.approx(row["ms"]["dense"] / row["ms"]["prunekit"])
    assert row["prune_s"] > 0 and row["own_measured_speedup"] >= 1.0
    assert doc["rows"][0]["model"] == "tiny"
    lines = md.read_text().splitlines()
    assert len(lines) == 3 and lines[2].startswith("| tiny | 1 | 1.5× | ")
    assert f"({row['rho']:.2f})" in lines[2] and "width" in lines[2]
    md.unlink()  # rebuilt from the JSON alone
    bench.main(["--out", str(out), "--markdown", str(md), "--markdown-only"])
    assert md.read_text().splitlines() == lines


def test_plot_goes_beside_the_json_unless_asked(bench, tmp_path):
    out = tmp_path / "rows.json"
    assert bench.plot_path(bench._parse(["--out", str(out)]), out) == tmp_path / "rows.png"
    fig = tmp_path / "fig.png"
    assert bench.plot_path(bench._parse(["--plot", str(fig)]), out) == fig
