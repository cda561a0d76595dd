"""se_gate: find SE gates, record their statistics, remove consistently suppressed channels."""

import pytest
import torch
import torchvision
from support import assert_same_state as _same
from support import state_of as _state
from torch import nn

import prunekit
from prunekit import structures
from prunekit.structures import se_gate as se

torch.set_num_threads(1)


class SE(nn.Module):
    """A user SE block written with the functional sigmoid."""

    def __init__(self, c, r=2):
        super().__init__()
        self.squeeze = nn.Conv2d(c, c // r, 1)
        self.excite = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean((2, 3),
                                                                            keepdim=True)))))


class LinearSE(nn.Module):
    """SE with Linear layers and a reshape after the gate (timm / user style)."""

    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c, c // 2)
        self.fc2 = nn.Linear(c // 2, c)

    def forward(self, x):
        g = nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))
        return x * g.view(x.shape[0], -1, 1, 1)


def _se_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), SE(8),
                         nn.Conv2d(8, 6, 3), nn.ReLU(), LinearSE(6), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(6, 4)).eval()


X = torch.randn(4, 3, 10, 10)


def test_finds_user_blocks_with_squeeze_and_excite():
    blocks = se.find_se_blocks(_se_cnn(), X)
    assert [(b.name, b.excite, b.squeeze, b.gate, b.channels) for b in blocks] == [
        ("3", "3.excite", "3.squeeze", "sigmoid", 8),
        ("6", "6.fc2", "6.fc1", "hardsigmoid", 6)]


def _silence(m, excite, squeeze, chans):
    """Gate exactly 0 on ``chans`` (sigmoid(-1e4) == 0) and the squeeze blind to them."""
    with torch.no_grad():
        e, s = m.get_submodule(excite), m.get_submodule(squeeze)
        e.weight[chans] = 0
        e.bias[chans] = -1e4
        s.weight[:, chans] = 0


def test_zero_gate_channels_are_free_and_found_by_the_statistics():
    m = _se_cnn()
    _silence(m, "3.excite", "3.squeeze", [1, 6])
    ref = m(X)
    stats = se.gate_stats(m, [X, torch.randn(4, 3, 10, 10)], threshold=0.05)
    assert stats.samples == 8
    st = stats.blocks["3.excite"]
    assert st["below"][1] == st["below"][6] == 1.0 and st["max"][1] == 0.0
    assert stats.suppressed(0.95).get("3.excite") == [1, 6]
    assert len(stats.rows()) == 14 and stats.table() is not None
    res = se.prune_se(m, X, batches=[X], threshold=0.05, consistency=0.95)
    assert res.plan.removed == {"3.excite": [1, 6]}
    assert m[0].out_channels == 6 and m[3].excite.out_channels == 6 and m[4].in_channels == 6
    torch.testing.assert_close(m(X), ref, rtol=0, atol=1e-5)


def test_compensation_folds_the_mean_squeeze_input_into_the_bias():
    m = _se_cnn()
    stats = se.gate_stats(m, [X])
    w = m[3].squeeze.weight.detach().clone()[:, :, 0, 0]
    b = m[3].squeeze.bias.detach().clone()
    mu = torch.tensor(stats.squeeze_mean["3.excite"], dtype=w.dtype)
    plan = se.remove_gate_channels(m, ["3.excite:2", "3.excite:5"], X,
                                   squeeze_mean=stats.squeeze_mean)
    assert plan.compensated == ["3.squeeze"]
    torch.testing.assert_close(m[3].squeeze.bias.detach(), b + w[:, [2, 5]] @ mu[[2, 5]])
    assert m[3].squeeze.in_channels == 6


@pytest.mark.parametrize("factory, n_blocks", [
    (lambda: torchvision.models.efficientnet_b0(num_classes=10), 16),
    (lambda: torchvision.models.mobilenet_v3_small(num_classes=10), 9),
])
def test_torchvision_models_still_run_after_removal(factory, n_blocks):
    torch.manual_seed(0)
    m = factory().eval()
    x = torch.randn(2, 3, 64, 64)
    assert len(structures.get("se_gate").find(m, x)) == n_blocks
    params = sum(p.numel() for p in m.parameters())
    res = se.prune_se(m, x, ratio=0.25)
    assert sum(len(v) for v in res.plan.removed.values()) > 0
    assert m(x).shape == (2, 10)
    assert sum(p.numel() for p in m.parameters()) < params


def test_no_se_block_and_bad_names_leave_the_model_bit_identical():
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid(), nn.Flatten(), nn.LazyLinear(2))
    plain(X)
    before = _state(plain)
    with pytest.raises(ValueError, match="no squeeze-and-excitation"):
        se.prune_se(plain, X)
    _same(before, _state(plain))
    m = _se_cnn()
    before = _state(m)
    for bad, match in ((["nope:1"], "not the excite layer"), (["3.excite:8"], "must lie"),
                       ({"3.excite": list(range(8))}, "at least one"), (["3.excite"], "is not")):
        with pytest.raises(ValueError, match=match):
            se.remove_gate_channels(m, bad, X)
        _same(before, _state(m))
    with pytest.raises(ValueError, match="threshold"):
        se.gate_stats(m, [X], threshold=1.5)


def test_plan_round_trip_through_save_and_load(tmp_path):
    m = _se_cnn()
    res = se.prune_se(m, X, ratio=0.3)
    out = m(X)
    path = prunekit.save(m, tmp_path / "ckpt", plan=[res.plan])
    loaded = prunekit.load(path, _se_cnn).eval()
    torch.testing.assert_close(loaded(X), out, rtol=0, atol=0)
    groups = se.se_groups(_se_cnn(), X)
    assert {g.id for g in groups} and all(
        any(mm.param.endswith(("excite.weight", "fc2.weight")) for mm in g.members)
        for g in groups)


def test_relative_test_ignores_a_uniformly_low_block():
    m = _se_cnn()
    with torch.no_grad():  # every gate ≈ 0.007 (a scale BatchNorm could undo), channel 3 ≈ 0
        m[3].excite.weight.zero_()
        m[3].excite.bias.fill_(-5.0)
        m[3].excite.bias[3] = -30.0
    absolute = se.gate_stats(m, [X], threshold=0.05, relative=False).suppressed(0.95)
    relative = se.gate_stats(m, [X], threshold=0.05, relative=True).suppressed(0.95)
    assert len(absolute["3.excite"]) == 7  # all but the most open one
    assert relative["3.excite"] == [3]


def test_timm_squeeze_excite_is_found_and_pruned():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    m = timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=5).eval()
    x = torch.randn(2, 3, 64, 64)
    blocks = se.find_se_blocks(m, x)
    assert len(blocks) == 9 and blocks[0].excite.endswith("se.conv_expand")
    se.prune_se(m, x, ratio=0.25)
    assert m(x).shape == (2, 5)
