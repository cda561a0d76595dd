"""benchmarks/training_vgg.py: the VGG-style CNN, BN folding, width rounding, and --smoke
end to end (JSON, plot, matched Torch-Pruning rows, ρ)."""

import json
import sys

import pytest
import torch
from support import load_benchmark


@pytest.fixture(scope="module")
def bench():
    yield load_benchmark("training_vgg")
    sys.modules.pop("training_methods", None)


def test_vgg_shapes_and_macs(bench):
    from prunekit.measure import count_macs

    model = bench.vgg_cnn((4, 4, 8, 8, 16, 16), hidden=12).eval()
    x = torch.rand(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert model[-3].in_features == 16 * 9  # 28 -> 14 -> 7 -> 3
    # conv MACs: 9·c_in·c_out·H·W per layer, plus the two Linear layers
    convs = 9 * (1 * 4 * 784 + 4 * 4 * 784 + 4 * 8 * 196 + 8 * 8 * 196 + 8 * 16 * 49
                 + 16 * 16 * 49)
    assert count_macs(model, x[:1]) >= convs + 144 * 12 + 12 * 10


def test_fold_bn_same_outputs_and_leaves_model(bench):
    torch.manual_seed(0)
    model = bench.vgg_cnn((4, 4, 8, 8, 16, 16), hidden=12)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    model.eval()
    x = torch.rand(5, 1, 28, 28)
    before = model(x)
    folded = bench.fold_bn(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 6
    torch.testing.assert_close(folded(x), before, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bench.freeze(model)(x), before, rtol=1e-4, atol=1e-5)


def test_round_widths_cuts_weakest_to_multiple(bench):
    torch.manual_seed(0)
    model = bench.vgg_cnn((5, 6, 11, 8, 13, 3), hidden=10).eval()
    with torch.no_grad():
        for t in (model[0].weight, model[0].bias, model[1].weight, model[1].bias):
            t[2] = 0.0  # channel 2 of conv1's group is all zero: the weakest, cut
        model[3].weight[:, 2] = 0.0
    kept = model[0].weight[[0, 1, 3, 4]].clone()
    cut = bench.round_widths(model, torch.rand(4, 1, 28, 28), 4)
    widths = [m.weight.shape[0] for m in model.modules()
              if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert widths == [4, 4, 8, 8, 12, 3, 8, 10]  # below the multiple (3) stays, out 10 stays
    assert sum(cut.values()) == 1 + 2 + 3 + 0 + 1 + 0 + 2
    torch.testing.assert_close(model[0].weight, kept)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.slow
def test_smoke_run(bench, tmp_path):
    pytest.importorskip("torch_pruning")
    res = bench.main(["--smoke", "--results-dir", str(tmp_path), "--img-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "training_vgg_smoke.json").read_text())
    assert saved["machine"] and saved["config"]["smoke"] is True
    rows = res["rows"]
    dense = rows[0]
    assert dense["method"] == "dense" and dense["mac_reduction"] == 1.0
    budget = rows[1]
    assert budget["method"].startswith("prunekit proximal GL, MAC budget")
    assert budget["budget_error"] <= 0.0 and budget["mac_reduction"] > 2.0
    tp = [r for r in rows if r.get("matched_to") == budget["method"]]
    assert tp and tp[0]["macs"] <= budget["macs"]  # bisected to at most its MACs (coarse)
    rounded = [r for r in rows if "rounded" in r["method"] and "matched_to" not in r]
    assert rounded and all(w % 2 == 0 or w < 2 for w in rounded[0]["widths"][:-1])
    for r in rows:
        if "accuracy" in r:
            assert r["rho"] == pytest.approx(r["measured_speedup"] / r["mac_reduction"])
            assert r["latency_ms"] > 0 and 0.0 <= r["accuracy"] <= 1.0
    assert "dense" in saved["profile"] and len(saved["profile"]) > 1
    retimed = [r for r in saved["rows"][1:] if "retime" in r]
    assert retimed and set(retimed[0]["retime"]) == {"eager", "bn_folded", "frozen"}
    assert all(v["ms"] > 0 for r in retimed for v in r["retime"].values())
    assert (tmp_path / "training_vgg_smoke.png").stat().st_size > 0


def test_finish_from_partial(bench, tmp_path):
    """An interrupted run's partial rows become the JSON, profiles and plot."""
    common = {"latency_ms": 2.0, "latency_dense_ms": 4.0, "mac_reduction": 4.0,
              "measured_speedup": 2.0, "rho": 0.5, "rho_folded": 0.6, "params": 100}
    rows = [dict(common, method="dense", level="", accuracy=0.8, macs=400, mac_reduction=1.0,
                 measured_speedup=1.0, rho=1.0, widths=[4, 4, 8, 8, 16, 16, 16, 10]),
            dict(common, method="prunekit proximal GL, MAC budget", level="4x MACs",
                 accuracy=0.78, macs=100, widths=[2, 2, 4, 4, 8, 8, 12, 10]),
            dict(common, method="Torch-Pruning magnitude (matched MACs)", level="4x MACs",
                 matched_to="prunekit proximal GL, MAC budget", accuracy=0.77, macs=99,
                 widths=[2, 2, 4, 4, 8, 8, 8, 10])]
    partial = tmp_path / "training_vgg_partial.json"
    partial.write_text(json.dumps({"config": {"seed": 0}, "rows": rows}))
    res = bench.main(["--smoke", "--finish", str(partial), "--results-dir", str(tmp_path),
                      "--img-dir", str(tmp_path), "--retime-modes"])
    saved = json.loads((tmp_path / "training_vgg_smoke.json").read_text())
    assert saved["rows"] == rows and "interrupted" in res
    prof = saved["profile"]["4x MACs | prunekit proximal GL, MAC budget"]
    assert [p["type"] for p in prof["layers"]][:3] == ["Conv2d", "BatchNorm2d", "ReLU"]
    conv = prof["by_type"]["Conv2d"]
    assert conv["mac_reduction"] > 2.0 and conv["dense_ms"] > 0
    assert (tmp_path / "training_vgg_smoke.png").stat().st_size > 0


def test_prox_select_traces_dual_ascent_and_epoch_selections(bench):
    """The trace is the dual ascent on the budget, step by step; each proximal epoch's
    selection but the last (the main row) is fine-tuned and tested; dense is untouched."""
    import math

    from prunekit.data import synthetic_fashion
    from prunekit.methods import Budget

    args = bench.parse(["--smoke", "--epoch-accuracy", "--trace-every", "1"])
    args.prox_epochs = 2
    train, test = synthetic_fashion(256, 128, seed=0)  # 2 steps per epoch
    torch.manual_seed(0)
    dense = bench.vgg_cnn(args.widths, args.hidden)
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    model, info = bench._prox_select(dense, train, test[0][:16], args,
                                     Budget(0.25, dual_lr=0.03), 0.002, "macs", 1, test=test)
    trace = info["trajectory"]
    assert [p["step"] for p in trace] == list(range(info["prox_steps"] + 1)) == list(range(5))
    assert trace[0]["lam"] == 0.002 and trace[-1]["lam"] == info["lam_final"]
    for a, b in zip(trace, trace[1:]):  # log λ += dual_lr·min(zeros − 1, 1) while over B
        gap = min(b["zeros"] - 1.0, 1.0) if b["zeros"] > 1.0 else -1.0
        assert b["lam"] == pytest.approx(a["lam"] * math.exp(0.03 * gap))
    ends = [p for p in trace if "epoch" in p]
    assert [p["epoch"] for p in ends] == [1, 2]
    assert 0.0 < ends[0]["accuracy"] <= 1.0 and ends[0]["macs"] > 0
    assert "accuracy" not in ends[1]  # the last selection is the caller's row
    assert ends[-1]["landed"] == pytest.approx(info["budget_landed"] / info["budget_target"])
    assert info["budget_error"] <= 0.0
    assert info["zeros_met_budget"] == (info["budget_zeros_only"] <= info["budget_target"])
    assert info["widths"] == [m.weight.shape[0] for m in model.modules()
                              if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert all(torch.equal(v, before[k]) for k, v in dense.state_dict().items())


def test_dense_curve_one_point_per_epoch(bench, tmp_path):
    res = bench.main(["--smoke", "--dense-curve", "--results-dir", str(tmp_path)])
    saved = json.loads((tmp_path / "training_vgg_dense_curve_smoke.json").read_text())
    assert [p["epoch"] for p in saved["curve"]] == [1] == [p["epoch"] for p in res["curve"]]
    assert all(0.0 <= p["test_accuracy"] <= 1.0 for p in saved["curve"])
    assert saved["machine"]


def test_finish_merges_runs_of_the_same_dense(bench, tmp_path):
    """One MAC level per process: --finish A B keeps A's dense row and appends B's rows."""
    common = {"latency_ms": 2.0, "latency_dense_ms": 4.0, "measured_speedup": 2.0, "rho": 0.5,
              "rho_folded": 0.6, "params": 100, "mac_reduction": 4.0}
    dense = dict(common, method="dense", level="", accuracy=0.8, macs=400, mac_reduction=1.0,
                 widths=[4, 4, 8, 8, 16, 16, 16, 10])

    def level(name, acc, widths):
        gl = dict(common, method="prunekit proximal GL, MAC budget", level=name, accuracy=acc,
                  macs=100, widths=widths)
        tp = dict(common, method="Torch-Pruning magnitude (matched MACs)", level=name,
                  matched_to=gl["method"], accuracy=acc - 0.01, macs=99, widths=widths)
        return [gl, tp]

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"config": {"tag": "a"}, "wall_s": 10.0,
                             "rows": [dense, *level("4x MACs", 0.78, [2, 2, 4, 4, 8, 8, 12, 10])]}))
    b.write_text(json.dumps({"config": {"tag": "b"}, "wall_s": 5.0,
                             "rows": [dense, *level("8x MACs", 0.7, [1, 1, 2, 2, 4, 4, 8, 10])]}))
    bench.main(["--smoke", "--finish", str(a), str(b), "--results-dir", str(tmp_path),
                "--img-dir", str(tmp_path), "--retime-modes", "--tag", "merged"])
    saved = json.loads((tmp_path / "training_vgg_smoke_merged.json").read_text())
    assert [r["level"] for r in saved["rows"]] == ["", "4x MACs", "4x MACs", "8x MACs", "8x MACs"]
    assert saved["merged_from"] == ["a.json", "b.json"] and saved["wall_s"] == 15.0
    assert "interrupted" not in saved and len(saved["profile"]) == 5
    other = dict(dense, widths=[8, 8, 8, 8, 16, 16, 16, 10])
    b.write_text(json.dumps({"config": {"tag": "b"}, "rows": [other]}))
    with pytest.raises(ValueError, match="another dense model"):
        bench.finish([a, b], bench.parse(["--smoke"]))
