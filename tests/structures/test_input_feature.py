"""input_feature: the first layer's input columns as a removable, proximally trainable group."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_same_state as _same
from support import state_of as _state
from torch import nn

import prunekit
from prunekit import structures
from prunekit.methods import ProximalGroupLasso
from prunekit.structures import input_feature as feat
from prunekit.surgery import SurgeryError

torch.set_num_threads(1)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 3)).eval()


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(5, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 3)).eval()


X = torch.randn(6, 1, 8, 8)


@settings(max_examples=8, deadline=None)
@given(st.sets(st.integers(0, 63), min_size=1, max_size=60))
def test_zero_features_are_free_and_indices_come_back(zeroed):
    m = _mlp()
    with torch.no_grad():
        m[1].weight[:, sorted(zeroed)] = 0
    ref = m(X)
    res = feat.prune_features(m, X)
    assert res.plan.removed == sorted(zeroed)
    assert res.kept == [i for i in range(64) if i not in zeroed]
    assert isinstance(m[1], feat.FeatureSelect) and m[1].layer.in_features == 64 - len(zeroed)
    torch.testing.assert_close(m(X), ref, rtol=0, atol=1e-5)  # full inputs still work


def test_conv_input_channels_and_reduced_inputs():
    m = _cnn()
    x = torch.randn(3, 5, 8, 8)
    with torch.no_grad():
        m[0].weight[:, [1, 3]] = 0
    ref = m(x)
    plan = feat.remove_features(m, [1, 3], x, select=False)
    assert m[0].in_channels == 3 and m[0].weight.shape[1] == 3
    torch.testing.assert_close(m(feat.reduce_inputs(x, plan)), ref, rtol=0, atol=1e-5)
    assert plan.kept == [0, 2, 4]


def test_pixel_unit_groups_all_channels_of_a_pixel():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5)).eval()
    x = torch.randn(2, 3, 4, 4)
    (g,) = feat.feature_groups(m, x, unit="pixel")
    assert g.size == 16 and g.members[0].index[2] == [2, 18, 34]
    with torch.no_grad():
        m[1].weight[:, [2, 18, 34]] = 0
    ref = m(x)
    res = feat.prune_features(m, x, unit="pixel")
    assert res.plan.removed == [2] and m[1].layer.in_features == 45
    torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="unit='pixel'"):
        feat.feature_groups(_cnn(), torch.randn(1, 5, 4, 4), unit="pixel")


def test_proximal_group_lasso_zeroes_whole_features_then_removal_is_exact():
    m = _mlp()
    groups = feat.feature_groups(m, X)
    assert structures.get("input_feature").groups is feat.feature_groups
    opt = ProximalGroupLasso(torch.optim.SGD(m.parameters(), lr=0.1), m, groups, lam=0.05)
    x = torch.randn(32, 1, 8, 8)
    x[:, :, :, :3] = 0  # dead border columns: no gradient, the prox zeroes them
    for _ in range(30):
        opt.zero_grad()
        m(x).pow(2).mean().backward()
        opt.step()
    zero = opt.zero_groups()["input_feature:1"]
    assert {r * 8 + c for r in range(8) for c in range(3)} <= set(zero)
    ref = m(x)
    res = structures.get("input_feature").prune(m, x, zero_only=True)
    assert res.plan.removed == zero
    torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-5)


def test_ratio_and_scores():
    m = _mlp()
    with torch.no_grad():
        m[1].weight[:, 5] *= 1e-3
    scores = feat.score_features(m, feat.find_features(m, X), X)
    assert min(scores, key=scores.get) == "5"
    res = feat.prune_features(m, X, n_features=1)
    assert res.plan.removed == [5]
    with pytest.raises(ValueError, match="at most one"):
        feat.prune_features(m, X, n_features=1, zero_only=True)
    act = feat.score_features(_mlp(), feat.find_features(_mlp(), X), X, method="activation")
    assert len(act) == 64 and all(v > 0 for v in act.values())


@pytest.mark.parametrize("bad, match", [
    ({"features": [64]}, "lie in"),
    ({"features": list(range(64))}, "cannot remove all"),
    ({"features": [1], "layer": "nope"}, "no module named"),
    ({"features": [1], "layer": "2"}, "nn.Linear or nn.Conv"),
    ({"features": [1], "unit": "voxel"}, "unit must be"),
])
def test_bad_requests_leave_the_model_bit_identical(bad, match):
    m = _mlp()
    before = _state(m)
    kwargs = dict(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        feat.remove_features(m, kwargs.pop("features"), X, **kwargs)
    _same(before, _state(m))
    assert isinstance(m[1], nn.Linear)


def test_model_without_input_layer_and_failed_forward_are_clean():
    with pytest.raises(ValueError, match="no nn.Linear"):
        feat.find_features(nn.Sequential(nn.ReLU()), X)

    class Skip(nn.Module):  # reads the raw input again after the first layer
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) + x

    m = Skip()
    before = _state(m)
    with pytest.raises(SurgeryError, match="restored"):
        feat.remove_features(m, [0], torch.randn(2, 4), select=False)
    _same(before, _state(m))
    assert m.fc.in_features == 4 and isinstance(m.fc, nn.Linear)


def test_plan_round_trip_through_save_and_load(tmp_path):
    m = _mlp()
    with torch.no_grad():
        m[1].weight[:, :10] = 0
    res = feat.prune_features(m, X)
    out = m(X)
    path = prunekit.save(m, tmp_path / "ckpt", plan=[res.plan])
    loaded = prunekit.load(path, _mlp).eval()
    assert isinstance(loaded[1], feat.FeatureSelect)
    torch.testing.assert_close(loaded(X), out, rtol=0, atol=0)
    assert feat.FeaturePlan.from_dict(res.plan.to_dict()) == res.plan


def test_kept_pixels_image(tmp_path):
    mask = feat.kept_pixels_image([0, 5, 15], (4, 4), tmp_path / "kept.png",
                                  background=torch.rand(4, 4).numpy())
    assert mask.shape == (4, 4) and mask.sum() == 3 and mask[1, 1] == 1
    assert (tmp_path / "kept.png").stat().st_size > 0
    with pytest.raises(ValueError, match="pixel indices"):
        feat.kept_pixels_image([16], (4, 4))
