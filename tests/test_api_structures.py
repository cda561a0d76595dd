"""prunekit.prune(structures=...): depth and channels in one call, saved and reloaded."""

import pytest
import torch
import torchvision
from support import assert_same_state as _same
from support import state_of as _state

import prunekit
import prunekit.io
from prunekit import structures

torch.set_num_threads(1)

X = torch.randn(2, 3, 32, 32)


def _resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=5).eval()


def test_depth_then_channels_saves_and_reloads(tmp_path, monkeypatch):
    m = _resnet()
    n_blocks = len(structures.find_blocks(m, X))
    res = prunekit.prune(m, X, ratio=0.3, structures={"depth": {"n_blocks": 2},
                                                      "channels": None})
    assert len(structures.find_blocks(m, X)) == n_blocks - 2
    assert [type(p).__name__ for p in res.plans] == ["DepthPlan", "Plan"]
    assert res.plan.n_removed > 0 and res.macs_after < res.macs_before
    assert "depth" in res.structures
    out = m(X)
    assert out.shape == (2, 5)

    path = prunekit.save(m, tmp_path / "ckpt", plan=res.plans)
    manifest = prunekit.io.read_manifest(path)
    assert manifest["structures"] == ["depth", "channels"]
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("must not unpickle"))
    loaded = prunekit.load(path, _resnet).eval()
    torch.testing.assert_close(loaded(X), out, rtol=0, atol=0)


def test_lone_structure_takes_ratio():
    m = _resnet()
    before = len(structures.find_blocks(m, X))
    res = prunekit.prune(m, X, ratio=0.25, structures=["depth"])
    assert len(structures.find_blocks(m, X)) == before - round(0.25 * before)
    assert res.plan.n_removed == 0 and res.params_after < res.params_before


@pytest.mark.parametrize("structures, error", [
    (["no_such_structure"], ValueError),
    ("depth", TypeError),
    ([], ValueError),
    (["depth", "depth"], ValueError),
    (["depth", "channels"], ValueError),  # depth needs its own options beside channels
])
def test_bad_structures_name_the_problem_and_touch_nothing(structures, error):
    m = _resnet()
    before = _state(m)
    with pytest.raises(error):
        prunekit.prune(m, X, ratio=0.3, structures=structures)
    _same(before, _state(m))


def test_failure_in_a_later_step_puts_everything_back():
    m = _resnet()
    before, out = _state(m), m(X)
    with pytest.raises(ValueError):
        prunekit.prune(m, X, ratio=0.3, importance="no_such_criterion",
                       structures={"depth": {"n_blocks": 2}, "channels": None})
    _same(before, _state(m))
    torch.testing.assert_close(m(X), out, rtol=0, atol=0)


def test_channel_prune_reports_plans_and_notes():
    m = _resnet()
    res = prunekit.prune(m, X, ratio=0.2)
    assert res.plans == [res.plan] and isinstance(res.notes, list)


def _inception_net():
    torch.manual_seed(0)
    from torch import nn

    class Inception(nn.Module):
        def __init__(self, c, o=4):
            super().__init__()
            self.b1 = nn.Sequential(nn.Conv2d(c, o, 1), nn.BatchNorm2d(o), nn.ReLU())
            self.b3 = nn.Sequential(nn.Conv2d(c, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())
            self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, o, 1), nn.ReLU())

        def forward(self, x):
            return torch.cat([self.b1(x), self.b3(x), self.bp(x)], 1)

    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), Inception(8), Inception(12),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 3)).eval()


def test_branch_then_channels_saves_and_reloads(tmp_path):
    m = _inception_net()
    x = torch.randn(2, 1, 8, 8)
    res = prunekit.prune(m, x, ratio=0.25, structures={"branch": {"n_branches": 2},
                                                       "channels": None})
    assert res.structures["branch"].plan.removed and res.plan.n_removed > 0
    out = m(x)
    path = prunekit.save(m, tmp_path / "ckpt", plan=res.plans)
    assert prunekit.io.read_manifest(path)["structures"] == ["branch", "channels"]
    loaded = prunekit.load(path, _inception_net).eval()
    torch.testing.assert_close(loaded(x), out, rtol=0, atol=0)


def test_structure_a_model_lacks_is_a_clear_error_and_touches_nothing():
    m = _resnet()
    before = _state(m)
    with pytest.raises(ValueError):
        prunekit.prune(m, X, ratio=0.2, structures={"connection": {"ratio": 0.5},
                                                    "channels": None})
    _same(before, _state(m))
