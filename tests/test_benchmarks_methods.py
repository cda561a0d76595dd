"""benchmarks/training_methods.py --smoke runs end to end and writes sane JSON and plots."""

import json

import pytest
from support import load_benchmark


@pytest.mark.slow
def test_training_methods_smoke(tmp_path):
    pytest.importorskip("torch_pruning")
    bench = load_benchmark("training_methods")
    res = bench.main(["--smoke", "--results-dir", str(tmp_path), "--img-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "training_methods_smoke.json").read_text())
    assert saved["machine"] and saved["config"]["smoke"] is True
    for row in res["unstructured"]:
        assert row["weights"] / row["nonzero_weights"] == pytest.approx(
            row["target_compression"], rel=0.02)
    methods = {r["method"] for r in res["structured"]}
    assert "Torch-Pruning magnitude (matched MACs)" in methods and "dense" in methods
    dense, budget, tp_budget = res["structured"][:3]
    assert budget["macs"] < 0.2 * dense["macs"]  # budget 0.125 of the weight MACs
    assert tp_budget["macs"] == pytest.approx(budget["macs"], rel=0.25)  # matched (coarse)
    assert all(r["latency_ms"] > 0 for r in res["structured"])
    assert 0.0 <= res["lottery"]["ticket_accuracy"] <= 1.0
    assert (tmp_path / "methods_unstructured_smoke.png").stat().st_size > 0
    assert (tmp_path / "methods_structured_smoke.png").stat().st_size > 0


def test_retime_widths_rebuilds_recorded_shapes_and_writes_rho(tmp_path):
    bench = load_benchmark("retime_widths")
    src = tmp_path / "training_methods_structured_x.json"
    rows = [{"method": "a", "widths": [10, 25, 250, 10], "accuracy": 0.8, "rho": 0.5},
            {"method": "a", "widths": [10, 25, 250, 10]},  # duplicate: timed once
            {"method": "dense", "widths": [20, 50, 500, 10]}, {"method": "b"}]
    src.write_text(json.dumps({"structured": rows}))
    out = tmp_path / "retime.json"
    doc = bench.main([str(src), "--batch", "4", "--rounds", "1", "--out", str(out)])
    assert [r["method"] for r in doc["rows"]] == ["a", "dense"]
    assert json.loads(out.read_text())["machine"]
    a, dense = doc["rows"]
    assert dense["mac_reduction"] == pytest.approx(1.0)
    # conv1 halved, conv2 quartered, fc1 halved on a quarter of its inputs: MACs by hand
    full = 20 * 25 * 576 + 50 * 20 * 25 * 64 + 800 * 500 + 500 * 10
    cut = 10 * 25 * 576 + 25 * 10 * 25 * 64 + 400 * 250 + 250 * 10
    assert a["mac_reduction"] == pytest.approx(full / cut, rel=0.02)
    assert a["rho"] == pytest.approx(a["speedup"] / a["mac_reduction"])
