"""prunekit.prune: ratio and MAC-target semantics, options, bad input, safety net."""

import json

import pytest
import torch
import torch.nn.functional as F
from support import same_state as _same
from support import state_of as _state
from torch import nn

import prunekit
from prunekit.graph import build_groups
from prunekit.measure import count_macs

torch.set_num_threads(1)  # see tests/graph/conftest.py


class Net(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.a = nn.Conv2d(width, 24, 3, padding=1)
        self.b = nn.Conv2d(24, width, 3, padding=1)
        self.c = nn.Conv2d(width, 32, 1)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = x + self.b(F.relu(self.a(x)))
        return self.fc(F.relu(self.c(x)).mean((2, 3)))


X = torch.randn(2, 3, 8, 8)


def test_ratio_is_a_channel_ratio_per_group():
    torch.manual_seed(0)
    m = Net().eval()
    sizes = {g.id: g.size for g in build_groups(m, X).groups}
    res = prunekit.prune(m, X, ratio=0.5)
    assert res.model is m
    assert {g: len(c) for g, c in res.plan.groups.items()} == {g: n // 2 for g, n in sizes.items()}
    assert m.stem.out_channels == 8 and m.a.out_channels == 12 and m.c.out_channels == 16
    assert res.macs_before == count_macs(Net(), X) and res.macs_after == count_macs(m, X)
    assert res.params_after < res.params_before
    json.dumps(res.plan.to_dict())  # plain data
    assert m(X).shape == (2, 5)


def test_target_macs_is_a_mac_fraction():
    torch.manual_seed(0)
    m = Net().eval()
    res = prunekit.prune(m, X, target_macs=0.5)
    frac = res.macs_after / res.macs_before
    assert 0.4 <= frac <= 0.5


def test_round_to_and_global_ranking():
    torch.manual_seed(0)
    m = Net().eval()
    res = prunekit.prune(m, X, ratio=0.3, round_to=4, global_ranking=True)
    for conv in (m.stem, m.a, m.c):
        assert conv.out_channels % 4 == 0
    assert res.plan.n_removed > 0


def test_ignore_keeps_modules_whole_and_zero_ratio_is_a_no_op():
    m = Net().eval()
    before = _state(m)
    prunekit.prune(m, X, ratio=0.0)
    assert _same(before, m.state_dict())
    prunekit.prune(m, X, ratio=0.5, ignore=["c"])
    assert m.c.weight.shape[0] == 32 and m.a.out_channels == 12


def test_custom_and_registered_importance():
    m = Net().eval()
    res = prunekit.prune(m, X, ratio=0.25, importance=lambda model, g, ctx: torch.arange(
        g.size, dtype=torch.float64))
    assert all(c == list(range(len(c))) for c in res.plan.groups.values())
    prunekit.prune(Net().eval(), X, ratio=0.25, importance="random")


@pytest.mark.parametrize("kwargs, exc", [
    ({"ratio": 1.0}, ValueError), ({"ratio": -0.1}, ValueError), ({"ratio": "0.5"}, ValueError),
    ({}, ValueError), ({"ratio": 0.5, "target_macs": 0.5}, ValueError),
    ({"target_macs": 0.0}, ValueError), ({"target_macs": 1e-4}, ValueError),
    ({"ratio": 0.5, "ignore": ["nope"]}, ValueError), ({"ratio": 0.5, "round_to": 0}, ValueError),
])
def test_bad_arguments_leave_model_untouched(kwargs, exc):
    m = Net().eval()
    before = _state(m)
    with pytest.raises(exc):
        prunekit.prune(m, X, **kwargs)
    assert _same(before, m.state_dict()) and m.stem.out_channels == 16


def test_not_a_module_and_inputs_that_fail():
    with pytest.raises(TypeError):
        prunekit.prune(lambda x: x, X, ratio=0.5)
    m = Net().eval()
    before = _state(m)
    with pytest.raises(ValueError, match="do not run"):
        prunekit.prune(m, torch.randn(2, 4, 8, 8), ratio=0.5)
    assert _same(before, m.state_dict())


def test_groups_that_break_the_model_are_left_whole_and_reported():
    class Literal(Net):
        def forward(self, x):
            x = F.relu(self.bn(self.stem(x)))
            x = x + self.b(F.relu(self.a(x)))
            y = F.relu(self.c(x))
            return self.fc(y.reshape(y.shape[0], 32, -1).mean(-1))  # literal width

    m = Literal().eval()
    res = prunekit.prune(m, X, ratio=0.5)
    assert m.c.out_channels == 32 and m.stem.out_channels == 8
    assert any(s.get("group") == "c" and "left whole" in s["reason"] for s in res.skipped)
    assert m(X).shape == (2, 5)


@pytest.mark.parametrize("importance", ["taylor", "activation_mean", "bn_scale",
                                        {"l2": 0.5, "taylor": 0.5}])
def test_data_driven_importance_uses_the_example_inputs(importance):
    m = Net().eval()
    res = prunekit.prune(m, X, ratio=0.5, importance=importance)
    assert res.plan.n_removed > 0 and m(X).shape == (2, 5)
