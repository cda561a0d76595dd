"""The depth / transformer benchmarks' smoke modes run and write sane JSON (never rot)."""

from __future__ import annotations

import json

from support import load_benchmark


def test_minilm_smoke(tmp_path):
    out = tmp_path / "minilm.json"
    load_benchmark("minilm").main(["--smoke", "--kinds", "heads", "layers", "combined",
                          "--no-torch-pruning", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["machine"]["torch"] and data["dense"]["n"] == 40
    rows = {r["plan"]: r for r in data["plans"]}
    assert rows["heads"]["status"].startswith("infeasible")  # heads are ~1/3 of the MACs
    layers = rows["layers"]
    assert layers["layers_removed"] >= 1 and layers["mac_speedup_theory"] > 1.3
    assert 0.0 <= layers["after"]["recall_at_1"] <= 1.0
    assert -1.0 <= rows["combined"]["after"]["mean_cosine"] <= 1.0


def test_causal_lm_smoke(tmp_path):
    out = tmp_path / "causal.json"
    load_benchmark("causal_lm").main(["--smoke", "--models", "gpt2", "llama", "--no-torch-pruning",
                             "--out", str(out)])
    rows = {r["model"]: r for r in json.loads(out.read_text())["rows"]}
    for r in rows.values():
        p = r["pruned"]
        assert p["generate_ok"] and p["cache_matches_no_cache"] and p["tied"]
        assert p["config_consistent"] and p["config"]["num_hidden_layers"] == 2
        assert p["kv_cache_elements"] < r["dense"]["kv_cache_elements"]
        assert r["params_after"] < r["params_before"]
    llama = rows["llama"]["pruned"]["config"]
    assert llama["num_attention_heads"] % llama["num_key_value_heads"] == 0  # GQA kept


def test_minilm_smoke_distillation_levers(tmp_path):
    """Bucketed batches, layer-to-layer hidden-state loss, warmup+cosine lr and the
    embedding-loss layer choice run; the one-layer + FFN plan keeps the mapping right."""
    bench = load_benchmark("minilm")
    out = tmp_path / "levers.json"
    bench.main(["--smoke", "--kinds", "layers", "layer_ffn", "--no-torch-pruning", "--bucket",
                "--hidden-weight", "1", "--lr-schedule", "cosine", "--layer-score", "loss",
                "--iterative", "--out", str(out)])
    rows = {r["plan"]: r for r in json.loads(out.read_text())["plans"]}
    for r in rows.values():
        kept = r["kept_layers"]
        assert len(kept) == 4 - r["layers_removed"] and kept == sorted(kept)
        assert r["distill"]["hidden_targets"] == kept[1:]  # layer i -> state after p_{i+1}-1
        assert r["distill"]["steps"] >= 1 and 0.0 <= r["after"]["recall_at_1"] <= 1.0
    assert rows["layer_ffn"]["layers_removed"] == 1
    assert rows["layer_ffn"]["ffn_removed_per_layer"] % (256 // 24) == 0


def test_minilm_lr_schedule():
    f = load_benchmark("minilm").lr_factor
    assert f(5, 100, "constant", 0.1) == 1.0
    assert f(0, 100, "cosine", 0.1) == 0.1 and f(9, 100, "cosine", 0.1) == 1.0
    assert abs(f(55, 100, "cosine", 0.1) - 0.5) < 1e-9  # halfway through the decay
    assert f(100, 100, "linear", 0.1) == 0.0 and f(10, 100, "linear", 0.1) == 1.0
    values = [f(s, 100, "cosine", 0.1) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
