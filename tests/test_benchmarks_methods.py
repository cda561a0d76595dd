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

