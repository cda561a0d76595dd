"""benchmarks/structures_features.py --smoke runs end to end and writes sane JSON and plots;
choices are made on validation, every reported accuracy is one read of the test set."""

import json

import pytest
from support import load_benchmark


@pytest.mark.slow
def test_structures_features_smoke(tmp_path):
    bench = load_benchmark("structures_features")
    out = tmp_path / "structures_features_smoke.json"
    res = bench.main(["--smoke", "--out", str(out), "--img-dir", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved["machine"] and saved["provenance"]["config"]["smoke"] is True
    reads = saved["splits"]["test_reads"]
    assert len(reads) == len(set(reads)) > 5
    feats = res["input_feature"]["rows"]
    assert feats[0]["pixels_kept"] == 784 and feats[1]["pixels_kept"] < 784
    assert feats[1]["params"] < feats[0]["params"] and len(feats[1]["kept"]) == \
        feats[1]["pixels_kept"]
    assert "val_accuracy" in feats[1]
    se = res["se_gate"]["relative gate L1 μ=0.1"]
    assert se["rows"] and all(r["latency_ms"] > 0 for r in se["rows"])
    assert {"mean_gate", "suppressed"} <= set(se["summary"][0])
    lr = res["lowrank"]["rows"]
    assert lr[0]["method"] == "dense" and lr[1]["params"] < lr[0]["params"]
    factored = [r for r in lr if r["method"] == "Frobenius+nuclear hybrid, factored"]
    assert factored and factored[0]["params"] <= 1.02 * lr[1]["params"]
    gated = [r for r in lr if r["method"].startswith("hybrid, factored where")]
    assert all("latency_before_ms" in row for row in gated[0]["factorize_rows"]
               if row["cheaper"])
    for png in ("features_kept_pixels_smoke.png", "features_accuracy_smoke.png",
                "se_gate_stats_smoke.png", "lowrank_vs_group_lasso_smoke.png"):
        assert (tmp_path / png).stat().st_size > 0
