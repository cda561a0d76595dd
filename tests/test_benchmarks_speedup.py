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
    doc = bench.main(["--smoke", "--out", str(out), "--floor", "--width-or-depth",
                      "--img-dir", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved["machine"]["versions"]["torch-pruning"] and saved["provenance"]["complete"]
    assert saved["device"]["threads"] == 2
    assert len(saved["provenance"]["load_average"]["start"]) == 3
    (row,) = saved["rows"]
    assert row["model"] == "tiny" and row["target"] == 1.5 and row["multiple"] == 8
    names = set(row["ms"])
    assert {"dense", "prunekit", "width_floor", "prunekit_wd"} <= names, row.get("tp_error")
    tp = sorted(n for n in names if n.startswith("torch_pruning"))
    assert tp in (["torch_pruning_0"], ["torch_pruning_0", "torch_pruning_1"])
    if tp == ["torch_pruning_0"]:  # matched within 1 % ...
        assert row["tp_macs_ratio"] == pytest.approx(row["macs_ratio"], rel=0.0101)
        assert row["tp_match"] == "within 1 %"
    else:  # ... or a bracketing pair, the speedup interpolated at our MACs
        assert row["tp_match"].startswith("bracket") and row["tp_macs_ratio"] == row["macs_ratio"]
    assert row["tp_config"]["ignored_layers"] == ["Linear"] and row["tp_config"]["round_to"] == 8
    # every reading of the paired rounds is kept
    kept = row["timing"]["models"]["dense"]["samples_ms"]
    assert len(kept) == 2 and all(len(r) >= 3 for r in kept)
    assert row["floor_macs_ratio"] > row["macs_ratio"]
    assert row["floor_rho"] == pytest.approx(row["floor_speedup"] / row["floor_macs_ratio"])
    assert row["wd_kind"] == "width" and [c["kind"] for c in row["wd_candidates"]] == ["width"]
    assert row["wd_macs_ratio"] >= 1.0 and row["wd_prune_s"] > 0
    assert row["rho"] == pytest.approx(row["speedup"] / row["macs_ratio"])
    assert row["speedup"] == pytest.approx(row["ms"]["dense"] / row["ms"]["prunekit"])
    lo, hi = row["speedup_range"]
    assert lo <= hi and row["prune_s"] > 0  # no timing asserts: the box is shared
    assert doc["table"]["rows"][0][:3] == ["tiny", "1", "1.5×"]
    assert (tmp_path / "speedup.png").stat().st_size > 0
