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



def test_structured_seeds_pairs_gl_with_the_torch_pruning_run_after_it(tmp_path):
    """Per level: Δ = GL − TP per seed (points), mean, SE = sd/√n, wins; rows that are
    not a (budget GL, Torch-Pruning) pair at one level are ignored."""
    bench = load_benchmark("structured_seeds")

    def run(seed, acc):  # acc: level -> (gl, tp)
        rows = [{"method": "dense", "accuracy": 0.88, "level": None}]
        for method, keep in (("fixed λ (macs weights)", 0.4), ("MAC budget (ablation)", 2)):
            rows += [{"method": f"prunekit proximal GL, {method}", "accuracy": 0.5,
                      "level": "4x MACs", "mac_reduction": 4.0, "widths": [1], "min_keep": keep},
                     {"method": "Torch-Pruning magnitude (matched MACs)", "accuracy": 0.9,
                      "level": "4x MACs", "mac_reduction": 4.0, "widths": [8]}]
        for level, (gl, tp) in acc.items():
            rows += [{"method": "prunekit proximal GL, MAC budget (macs weights)",
                      "accuracy": gl, "level": level, "mac_reduction": 4.0, "widths": [9],
                      "min_keep": 0.4},
                     {"method": "Torch-Pruning magnitude (matched MACs)", "accuracy": tp,
                      "level": level, "mac_reduction": 4.0, "widths": [8]}]
        path = tmp_path / f"s{seed}.json"
        path.write_text(json.dumps({"config": {"seed": seed}, "structured": rows}))
        return path

    files = [run(0, {"4x MACs": (0.876, 0.878), "16x MACs": (0.85, 0.84)}),
             run(1, {"4x MACs": (0.880, 0.874)})]
    res = bench.main([*map(str, files), "--out", str(tmp_path / "o.json"),
                      "--plot", str(tmp_path / "o.png")])
    four, sixteen = res["levels"]
    assert four["level"] == "4x MACs" and four["seeds"] == [0, 1]
    assert four["delta_pt"] == pytest.approx([-0.2, 0.6])
    assert four["mean_delta_pt"] == pytest.approx(0.2) and four["gl_wins"] == 1
    assert four["se_pt"] == pytest.approx(0.4)  # sd of (-0.2, 0.6) = 0.566, / sqrt 2
    assert sixteen["n"] == 1 and sixteen["delta_pt"] == pytest.approx([1.0])
    assert (tmp_path / "o.png").stat().st_size > 0


def test_pooling_speed_smoke(tmp_path):
    res = load_benchmark("pooling_speed").main(["--smoke", "--out", str(tmp_path / "p.json")])
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["machine"] and len(saved["pooling"]) == 2 and saved["lenet5"]
    for r in res["lenet5"]:
        assert r["mac_reduction"] > 1 and r["eager"]["rho"] > 0 and r["fast_pool"]["rho"] > 0
    assert (tmp_path / "p.png").stat().st_size > 0
