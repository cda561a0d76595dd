"""benchmarks/structures_features.py --smoke runs end to end and writes sane JSON and plots."""

import json

import pytest
from support import load_benchmark


@pytest.mark.slow
def test_structures_features_smoke(tmp_path):
    bench = load_benchmark("structures_features")
    res = bench.main(["--smoke", "--results-dir", str(tmp_path), "--img-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "structures_features_smoke.json").read_text())
    assert saved["machine"] and saved["config"]["smoke"] is True
    feats = res["input_feature"]["rows"]
    assert feats[0]["pixels_kept"] == 784 and feats[1]["pixels_kept"] < 784
    assert feats[1]["params"] < feats[0]["params"] and len(feats[1]["kept"]) == \
        feats[1]["pixels_kept"]
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
