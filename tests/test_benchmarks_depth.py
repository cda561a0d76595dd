"""The depth / transformer benchmarks' smoke modes run and write sane JSON (never rot)."""

from __future__ import annotations

import json

import pytest
import torch
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
        assert r["distill"]["loss_first"] > 0 and r["distill"]["loss_last"] > 0
        assert len(r["distill"]["epoch_losses"]) == r["distill"]["epochs"]
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


def test_minilm_smoke_width_plans_and_relational_loss(tmp_path):
    """Width-only heads+FFN plan in 64-unit steps ranked by a data-driven criterion, the
    relational loss and a second seed run; an explicit --shape is cut exactly."""
    bench = load_benchmark("minilm")
    out = tmp_path / "width.json"
    bench.main(["--smoke", "--kinds", "ffn", "heads_ffn", "--no-torch-pruning",
                "--criterion", "taylor", "--ffn-unit", "64", "--relational-weight", "1",
                "--seed", "1", "--hidden-weight", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    rows = {r["plan"]: r for r in data["plans"]}
    config = data["provenance"]["config"]
    assert config["relational_weight"] == 1.0 and config["seed"] == 1
    for r in rows.values():
        assert r["layers_removed"] == 0 and r["kept_layers"] == [0, 1, 2, 3]
        assert r["ffn_removed_per_layer"] % 64 == 0 and r["ffn_removed_per_layer"] > 0
        assert r["mac_speedup_theory"] > 1.3 and r["distill"]["steps"] >= 1
        assert 0.0 <= r["after"]["recall_at_1"] <= 1.0
    hf = rows["heads_ffn"]
    assert hf["heads_removed_per_layer"] >= 1  # same fraction of heads as of FFN units
    shaped = tmp_path / "shape.json"
    bench.main(["--smoke", "--kinds", "ffn", "--no-torch-pruning", "--shape", "0", "1", "64",
                "--no-distill", "--out", str(shaped)])
    row = json.loads(shaped.read_text())["plans"][0]
    assert (row["layers_removed"], row["heads_removed_per_layer"],
            row["ffn_removed_per_layer"]) == (0, 1, 64)
    assert "distill" not in row and 0.0 <= row["before"]["recall_at_1"] <= 1.0


def test_minilm_plan_shape_heads_ffn_fractions():
    from types import SimpleNamespace

    bench = load_benchmark("minilm")
    cfg = SimpleNamespace(num_attention_heads=12, intermediate_size=1536, hidden_size=384,
                          num_hidden_layers=6)
    assert bench.plan_shape(cfg, "heads_ffn", 8, 64) == (0, 4, 512)   # 1/3 of both
    assert bench.plan_shape(cfg, "ffn", 13, 64) == (0, 0, 832)
    assert bench.first_step(cfg, "ffn", 1.5, 64, 64) == 13            # MAC 1.54x
    assert bench.first_step(cfg, "heads_ffn", 1.5, 64, 64) == 8       # MAC 1.50x


def test_minilm_distill_loss_token_weight():
    """``v · MSE_m(h_s, h_t) + (1 − cos(e_s, e_t))``: v = 0 leaves the pooled cosine alone
    (a student equal to the teacher up to scale then costs nothing)."""
    import torch

    bench = load_benchmark("minilm")
    torch.manual_seed(0)
    t = torch.randn(3, 5, 8)
    mask = torch.ones(3, 5, dtype=torch.long)
    mask[0, 3:] = 0
    s = 2.0 * t  # same direction, twice the norm
    mse = bench._masked_mse(s, t, mask)
    assert float(mse) > 0
    assert float(bench._distill_loss(s, t, mask, 0.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(bench._distill_loss(s, t, mask, 0.5)) == pytest.approx(0.5 * float(mse),
                                                                         rel=1e-5)
    assert float(bench._distill_loss(s, t, mask)) == pytest.approx(float(mse), rel=1e-5)


def test_minilm_held_out_sample_flags(monkeypatch):
    """``--sample random --sample-seed k`` reaches ``wordnet_retrieval_set`` (a second,
    held-out evaluation set); the default is the standard first 2,000 nouns."""
    bench = load_benchmark("minilm")
    seen = {}

    def fake_set(n, **kw):
        seen.update(n=n, **kw)
        raise RuntimeError("stop")

    monkeypatch.setattr(bench, "wordnet_retrieval_set", fake_set)
    monkeypatch.setattr(bench, "load_minilm", lambda: (None, None))
    for argv, want in (([], ("first", 0)), (["--sample", "random", "--sample-seed", "3"],
                                            ("random", 3))):
        with pytest.raises(RuntimeError, match="stop"):
            bench.load_setup(bench.parse_args(["--n", "50", *argv]))
        assert (seen["n"], seen["sample"], seen["seed"]) == (50, *want)


def test_minilm_drop_sublayers_is_exact_on_zeroed_branches():
    """Removing a sublayer whose branch outputs zero (its output projection zeroed)
    changes no output: ``LN(x + 0) = LN(x)``; the projections are gone; bad names raise."""
    import copy

    import torch
    from transformers import BertConfig, BertModel

    bench = load_benchmark("minilm")
    torch.manual_seed(0)
    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                 intermediate_size=64, vocab_size=200)).eval()
    with torch.no_grad():
        for lin in (model.encoder.layer[1].attention.output.dense,
                    model.encoder.layer[2].output.dense):
            lin.weight.zero_()
            lin.bias.zero_()
    ids = torch.randint(0, 200, (2, 7))
    mask = torch.ones_like(ids)
    before = model(input_ids=ids, attention_mask=mask)[0]
    cut = copy.deepcopy(model)
    bench.drop_sublayers(cut, ["a1", "f2"])
    torch.testing.assert_close(cut(input_ids=ids, attention_mask=mask)[0], before,
                               atol=1e-5, rtol=1e-5)
    n = sum(p.numel() for p in model.parameters())
    gone = 4 * (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32)  # Q, K, V, O; FFN in, out
    assert sum(p.numel() for p in cut.parameters()) == n - gone
    for bad in (["x1"], ["f0", "a3"], ["f"]):
        victim = copy.deepcopy(model)
        with pytest.raises(ValueError, match="--sublayers"):
            bench.drop_sublayers(victim, bad)
        assert sum(p.numel() for p in victim.parameters()) == n  # nothing removed


def test_minilm_progressive_removes_one_layer_per_phase(tmp_path):
    """``--progressive``: L phases, each removing one layer not removed before and
    distilling its share of the steps; the model returned is re-timed and keeps the
    layers the last phase kept."""
    out = tmp_path / "progressive.json"
    load_benchmark("minilm").main(["--smoke", "--kinds", "layers", "--no-torch-pruning",
                                   "--shape", "2", "0", "0", "--progressive",
                                   "--distill-steps", "4", "--out", str(out)])
    row = json.loads(out.read_text())["plans"][0]
    phases = row["progressive"]
    assert len(phases) == 2
    removed = [p["removed"][0] for p in phases]
    assert all(len(p["removed"]) == 1 for p in phases) and len(set(removed)) == 2
    assert sorted(phases[-1]["kept"] + removed) == [0, 1, 2, 3]
    assert row["kept_layers"] == phases[-1]["kept"] == sorted(phases[-1]["kept"])
    assert phases[0]["kept"] == sorted(set(range(4)) - {removed[0]})
    assert all(p["distill"]["steps"] == 2 for p in phases)
    assert row["measured_speedup"] > 0 and 0.0 <= row["after"]["recall_at_1"] <= 1.0


def test_minilm_ema_leaves_the_average_of_the_distilled_weights(monkeypatch):
    """``--ema d``: after distillation the student holds ē, updated ē ← d·ē + (1 − d)·θ
    after every step (here checked against the trajectory recorded through ``fit``)."""
    bench = load_benchmark("minilm")
    import prunekit.methods as methods

    trail = []
    real_fit = methods.fit

    def recording_fit(model, data, cfg, on_step=None, **kw):
        def hook(step, m):
            on_step(step, m)
            trail.append([p.detach().clone() for p in m.parameters()])
        return real_fit(model, data, cfg, on_step=hook, **kw)

    monkeypatch.setattr(methods, "fit", recording_fit)
    setup = bench.load_setup(bench.parse_args(["--smoke", "--ema", "0.5"]))
    student = bench.copy.deepcopy(setup.dense)
    start = [p.detach().clone() for p in student.parameters()]
    bench.distill(student, setup, steps=3)
    assert len(trail) == 3
    want = start
    for theta in trail:
        want = [0.5 * e + 0.5 * t for e, t in zip(want, theta)]
    for p, w in zip(student.parameters(), want):
        torch.testing.assert_close(p.detach(), w)
    with pytest.raises(SystemExit):
        bench.parse_args(["--ema", "1.0"])
