"""benchmarks/training_vgg.py: the VGG-style CNN, BN folding, width rounding, Torch-Pruning
at prunekit's widths, and --smoke end to end under the rules (same epochs, matched MACs,
validation-only selection curves)."""

import json

import pytest
import torch
from support import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("training_vgg")


def test_vgg_shapes_and_macs(bench):
    from prunekit.measure import count_macs

    model = bench.vgg_cnn((4, 4, 8, 8, 16, 16), hidden=12).eval()
    x = torch.rand(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    assert model[-3].in_features == 16 * 9  # 28 -> 14 -> 7 -> 3
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


def test_torch_pruning_at_our_widths(bench):
    pytest.importorskip("torch_pruning")
    torch.manual_seed(0)
    dense = bench.vgg_cnn((8, 8, 16, 16, 32, 32), hidden=24).eval()
    widths = [5, 7, 13, 9, 20, 31, 17, 10]
    model = bench.tp_at_widths(dense, torch.rand(2, 1, 28, 28), widths)
    assert [m.weight.shape[0] for m in model.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))] == widths
    assert dense[0].weight.shape[0] == 8  # the dense model is untouched


@pytest.mark.slow
def test_smoke_run(bench, tmp_path):
    pytest.importorskip("torch_pruning")
    out = tmp_path / "vgg.json"
    res = bench.main(["--smoke", "--out", str(out), "--img-dir", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved["provenance"]["config"]["smoke"] is True
    rows = res["rows"]
    assert rows[0]["method"] == "dense" and rows[0]["mac_reduction"] == 1.0
    gl = rows[1]
    assert gl["role"] == "prunekit" and gl["budget_error"] <= 0.0 and gl["mac_reduction"] > 2.0
    tp = [r for r in rows if r.get("matched_to") == gl["method"] and r.get("match") in (
        "within 1 %", "interpolated")]
    assert tp and tp[0]["macs"] == pytest.approx(gl["macs"], rel=0.01)
    ours = next(r for r in rows if r.get("match") == "same widths")
    assert ours["widths"] == gl["widths"]
    rounded = next(r for r in rows if r["method"].endswith("rounded down"))
    assert all(w % 2 == 0 or w < 2 for w in rounded["widths"][:-1])
    for cmp in saved["comparisons"]:  # the same total epochs for every method
        assert set(cmp["spent"].values()) == {cmp["budget"]}
    reads = saved["splits"]["test_reads"]
    assert len(reads) == len(set(reads))
    retimed = [r for r in rows[1:] if "retime" in r]
    assert retimed and set(retimed[0]["retime"]) == {"eager", "bn_folded", "frozen"}
    assert "dense" in saved["profile"] and len(saved["profile"]) > 1
    assert (tmp_path / "vgg.png").stat().st_size > 0


def test_prox_select_traces_dual_ascent_and_validation_curve(bench):
    """The trace is the dual ascent on the budget, step by step; each proximal epoch's
    selection but the last (the main row) is fine-tuned and scored on validation only."""
    import math

    from prunekit.data import synthetic_fashion
    from prunekit.methods import Budget

    args = bench.parse(["--smoke", "--epoch-accuracy", "--trace-every", "1"])
    args.prox_epochs = 2
    train, val = synthetic_fashion(256, 128, seed=0)  # 2 steps per epoch
    torch.manual_seed(0)
    dense = bench.vgg_cnn(args.widths, args.hidden)
    before = {k: v.clone() for k, v in dense.state_dict().items()}
    model, info = bench._prox_select(dense, train, val[0][:16], args,
                                     Budget(0.25, dual_lr=0.03), 0.002, "macs", 1, val=val)
    trace = info["trajectory"]
    assert [p["step"] for p in trace] == list(range(info["prox_steps"] + 1)) == list(range(5))
    assert trace[0]["lam"] == 0.002 and trace[-1]["lam"] == info["lam_final"]
    for a, b in zip(trace, trace[1:]):  # log λ += dual_lr·min(zeros − 1, 1) while over B
        gap = min(b["zeros"] - 1.0, 1.0) if b["zeros"] > 1.0 else -1.0
        assert b["lam"] == pytest.approx(a["lam"] * math.exp(0.03 * gap))
    ends = [p for p in trace if "epoch" in p]
    assert [p["epoch"] for p in ends] == [1, 2]
    assert 0.0 < ends[0]["val_accuracy"] <= 1.0 and "accuracy" not in ends[0]
    assert "val_accuracy" not in ends[1]  # the last selection is the caller's row
    assert info["widths"] == [m.weight.shape[0] for m in model.modules()
                              if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert all(torch.equal(v, before[k]) for k, v in dense.state_dict().items())


def test_dense_curve_reads_validation_only(bench, tmp_path):
    out = tmp_path / "curve.json"
    res = bench.main(["--smoke", "--dense-curve", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert [p["epoch"] for p in saved["curve"]] == [1] == [p["epoch"] for p in res["curve"]]
    assert all(0.0 <= p["val_accuracy"] <= 1.0 for p in saved["curve"])
    assert saved["splits"]["test_reads"] == []
