"""Surgery: cuts, attributes, all-or-nothing restoration, plans and replay."""

import pytest
import torch
import torch.nn.functional as F
from support import same_state as _same
from support import state_of as _state
from torch import nn

from prunekit.graph import build_groups
from prunekit.surgery import Plan, SurgeryError, apply_plan, remove_channels


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 16, 3, padding=1, groups=8)  # depthwise, multiplier 2
        self.gn = nn.GroupNorm(4, 16)
        self.conv2 = nn.Conv2d(16, 6, 1)
        self.ln = nn.LayerNorm(6)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.conv1(x)))
        x = self.conv2(self.gn(self.dw(x)))
        return self.fc(self.ln(x.mean((2, 3))))


def test_cut_updates_tensors_and_attributes():
    torch.manual_seed(0)
    m = Net().eval()
    x = torch.randn(2, 3, 6, 6)
    gs = build_groups(m, x)
    removal = {g.id: [0] for g in gs.groups if g.prunable}
    plan = remove_channels(m, gs, removal, x)
    # a GroupNorm group (4 channels) after a x2 depthwise conv = 2 input channels: one unit
    g = next(g for g in gs.groups if g.id == "conv1")
    assert g.size == 4 and g.members[0].index[0] == [0, 1]
    assert m.conv1.out_channels == m.bn.num_features == 6
    assert m.dw.in_channels == m.dw.groups == 6 and m.dw.out_channels == 12
    assert m.gn.num_channels == 12 and m.gn.num_groups == 3
    assert m.ln.normalized_shape == (5,) and m.fc.in_features == 5
    assert m(x).shape == (2, 3)
    assert plan.attrs["conv1"]["out_channels"] == 6


def test_failure_restores_bit_identical_state_and_attributes():
    class Picky(Net):
        def forward(self, x):
            if self.conv1.weight.shape[0] != 8:
                raise RuntimeError("picky layer wants 8 channels")
            return super().forward(x)

    m = Picky().eval()
    x = torch.randn(1, 3, 6, 6)
    gs = build_groups(m, x)
    before = _state(m)
    params = [p for p in m.parameters()]
    g = next(g for g in gs.groups if g.id == "conv1")
    with pytest.raises(SurgeryError, match="picky") as info:
        remove_channels(m, gs, {g.id: [1, 2]}, x)
    assert info.value.op and info.value.module == ""
    assert _same(before, m.state_dict())
    assert m.conv1.out_channels == 8 and m.bn.num_features == 8
    assert all(p is q for p, q in zip(params, m.parameters()))


def test_bad_removal_is_rejected_and_model_untouched():
    m = Net().eval()
    x = torch.randn(1, 3, 6, 6)
    gs = build_groups(m, x)
    before = _state(m)
    g = gs.groups[0]
    for bad in ({"nope": [0]}, {g.id: [g.size]}, {g.id: list(range(g.size))}):
        with pytest.raises(ValueError):
            remove_channels(m, gs, bad, x)
    with pytest.raises(TypeError):
        remove_channels(m, gs, [0, 1], x)
    assert _same(before, m.state_dict())


def test_plan_json_round_trip_and_replay_on_fresh_model():
    torch.manual_seed(1)
    m = Net().eval()
    x = torch.randn(1, 3, 6, 6)
    gs = build_groups(m, x)
    removal = {g.id: list(range(0, g.size, 3))[: g.size - 1] for g in gs.groups if g.prunable}
    plan = remove_channels(m, gs, removal, x)
    again = Plan.from_json(plan.to_json())
    assert again == plan
    fresh = Net().eval()
    apply_plan(fresh, again, x)
    assert {k: v.shape for k, v in fresh.state_dict().items()} == \
        {k: v.shape for k, v in m.state_dict().items()}
    fresh.load_state_dict(m.state_dict())
    torch.testing.assert_close(fresh(x), m(x))


def test_plan_rejects_foreign_json_and_mismatched_models():
    with pytest.raises(ValueError, match="not a prunekit plan"):
        Plan.from_json('{"cuts": []}')
    with pytest.raises(ValueError):
        Plan.from_json("not json")
    m = Net()
    x = torch.randn(1, 3, 6, 6)
    gs = build_groups(m, x)
    plan = remove_channels(m, gs, {"conv1": [0]}, x)
    other = nn.Sequential(nn.Conv2d(3, 4, 1))
    with pytest.raises(ValueError):
        apply_plan(other, plan)


def test_tied_weights_stay_tied_and_shared_params_keep_identity():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 6)
            self.mid = nn.Linear(6, 6)
            self.out = nn.Linear(6, 10, bias=False)
            self.out.weight = self.emb.weight

        def forward(self, ids):
            return self.out(torch.relu(self.mid(self.emb(ids))) + self.emb(ids))

    m = Tied()
    ids = torch.randint(0, 10, (1, 4))
    gs = build_groups(m, ids)
    g = next(g for g in gs.groups if any(mm.param == "emb.weight" for mm in g.members))
    remove_channels(m, gs, {g.id: [0, 2]}, ids)
    assert m.out.weight is m.emb.weight and m.emb.weight.shape == (10, 4)
    assert m.emb.embedding_dim == 4 and m.out.in_features == 4
