"""The "branch" structure: detection, zero-branch invariance, removal, plans, proximal."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prunekit import structures
from prunekit.methods import ProximalGroupLasso
from prunekit.structures.branch import (
    BranchPlan,
    EmptyBranch,
    apply_branch_plan,
    branch_groups,
    find_branch_modules,
    find_branches,
    prune_branches,
    remove_branches,
    score_branches,
    zero_branches,
)


def cbr(i: int, o: int, k: int = 1, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU())


class Inception(nn.Module):
    """Four parallel paths concatenated; the 3x3 path written as separate children."""

    def __init__(self, c: int, o: int = 4) -> None:
        super().__init__()
        self.b1 = cbr(c, o)
        self.b3_1 = cbr(c, o)
        self.b3_2 = cbr(o, o, 3)
        self.b5 = nn.Sequential(cbr(c, o), cbr(o, o, 5))
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.bp = cbr(c, o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3_2(self.b3_1(x)), self.b5(x),
                          self.bp(self.pool(x))], 1)


class Reduce(nn.Module):
    """Stride-2 branches plus a parameter-free pool branch."""

    def __init__(self, c: int, o: int = 4) -> None:
        super().__init__()
        self.a = cbr(c, o, 3, 2)
        self.b = nn.Sequential(cbr(c, o), cbr(o, o, 3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x), nn.functional.max_pool2d(x, 3, 2, 1)], 1)


class SumBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.p = nn.ModuleList([cbr(c, c, k) for k in (1, 3, 5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.p[0](x) + self.p[1](x) + self.p[2](x)


def tiny_net() -> nn.Module:
    return nn.Sequential(cbr(1, 8, 3), Inception(8), Reduce(16), Inception(24), SumBlock(16),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))


def _net() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = tiny_net()
    for m in net.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return net.eval(), torch.randn(2, 1, 16, 16)


def _zero(model: nn.Module, names: list[str], x: torch.Tensor) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for b in find_branches(model, x):
            if b.name in names:
                for p in b.params:
                    params[p].zero_()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    now = model.state_dict()
    assert list(now) == list(state)
    for k, v in state.items():
        assert torch.equal(now[k], v), k


def test_finds_branches_from_the_trace():
    net, x = _net()
    mods = {bm.name: bm for bm in find_branch_modules(net, x)}
    assert sorted(mods) == ["1", "2", "3", "4"]
    assert [b.name for b in mods["1"].removable] == ["1.b1", "1.b3", "1.b5", "1.bp"]
    assert mods["1"].removable[1].children == ("1.b3_1", "1.b3_2")
    assert mods["1"].removable[1].heads == ("1.b3_2",)
    assert mods["2"].kind == "cat" and len(mods["2"].removable) == 2
    assert "no parameters" in mods["2"].branches[2].reason
    assert mods["4"].kind == "sum" and len(mods["4"].removable) == 3
    assert structures.get("branch").find is find_branches


@settings(max_examples=6, deadline=None)
@given(st.sets(st.sampled_from(["1.b1", "1.b3", "1.b5", "2.b", "3.bp", "3.b3", "4.p.1"]),
               min_size=1, max_size=4))
def test_zero_branches_are_free_to_remove(names):
    net, x = _net()
    _zero(net, sorted(names), x)
    y0 = net(x)
    plan = remove_branches(net, sorted(names), x)
    assert torch.allclose(net(x), y0, atol=1e-5)
    assert plan.n_removed == len(names)
    assert not any(p.startswith(tuple(f"{n}." for n in names)) for p, _ in
                   net.named_parameters() if "b3_" not in p)


def test_removal_shrinks_consumers_and_params():
    net, x = _net()
    before = sum(p.numel() for p in net.parameters())
    remove_branches(net, ["1.b5", "3.b1"], x)
    assert isinstance(net[1].b5, EmptyBranch) and isinstance(net[3].b1, EmptyBranch)
    assert net[2].a[0].in_channels == 12 and net[4].p[0][0].in_channels == 12
    assert sum(p.numel() for p in net.parameters()) < before
    assert net(torch.randn(3, 1, 21, 21)).shape == (3, 5)  # other sizes still run
    # the removed branches are gone from the structure
    assert "1.b5" not in [b.name for b in find_branches(net, x)]


def test_bad_names_and_models_leave_the_model_untouched():
    net, x = _net()
    state = _state(net)
    with pytest.raises(ValueError, match="not removable branches"):
        remove_branches(net, ["1.nope"], x)
    with pytest.raises(ValueError, match="at least one must stay"):
        remove_branches(net, ["1.b1", "1.b3", "1.b5", "1.bp"], x)
    with pytest.raises(ValueError, match="duplicates"):
        remove_branches(net, ["1.b1", "1.b1"], x)
    with pytest.raises(TypeError):
        remove_branches(net, "1.b1", x)
    _same_state(net, state)
    plain = nn.Sequential(cbr(1, 4, 3), nn.Flatten(), nn.Linear(4 * 64, 2)).eval()
    xs = torch.randn(1, 1, 8, 8)
    pstate = _state(plain)
    for call in (lambda: branch_groups(plain, xs), lambda: remove_branches(plain, ["0"], xs),
                 lambda: prune_branches(plain, xs, n_branches=1)):
        with pytest.raises(ValueError, match="no parallel branches"):
            call()
    _same_state(plain, pstate)
    with pytest.raises(ValueError, match="unknown structure"):
        structures.get("branches")


def test_scores_and_prune_by_count():
    net, x = _net()
    _zero(net, ["1.b5"], x)
    for method in ("output_share", "param_norm", "l2"):
        scores = score_branches(net, None, x, method=method)
        assert scores["1.b5"] == 0.0 and scores["1.b1"] > 0
    res = prune_branches(net, x, n_branches=3)
    assert "1.b5" in res.removed["1"]
    assert res.plan.n_removed == 3
    assert "removed b5" in res.report()
    with pytest.raises(ValueError, match="exactly one"):
        prune_branches(net, x)


def test_plan_json_round_trip_replays_on_a_fresh_model():
    net, x = _net()
    fresh = copy.deepcopy(net)
    plan = remove_branches(net, ["1.b3", "3.b5", "4.p.0"], x)
    text = plan.to_json()
    again = BranchPlan.from_json(text)
    assert again.to_dict() == plan.to_dict()
    apply_branch_plan(fresh, again, x)
    assert torch.allclose(fresh(x), net(x), atol=1e-6)
    assert {k: v.shape for k, v in fresh.state_dict().items()} == \
        {k: v.shape for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="not a branch plan"):
        BranchPlan.from_dict({"structure": "depth"})


def test_a_prune_that_removes_nothing_still_replays():
    # zero_only on a model without zero branches: the (empty) plan must load like any other
    net, x = _net()
    fresh, y0 = copy.deepcopy(net), net(x)
    res = prune_branches(net, x, zero_only=True)
    assert res.plan.removed == {} and torch.equal(net(x), y0)
    apply_branch_plan(fresh, BranchPlan.from_json(res.plan.to_json()), x)
    assert torch.equal(fresh(x), y0)


def test_proximal_training_zeroes_whole_branches():
    net, x = _net()
    net.train()
    groups = branch_groups(net, x)
    assert [g.id for g in groups] == ["branch:1", "branch:2", "branch:3", "branch:4"]
    opt = ProximalGroupLasso(torch.optim.SGD(net.parameters(), lr=0.05), net, groups, lam=0.5)
    gen = torch.Generator().manual_seed(1)
    for _ in range(15):
        xb = torch.randn(8, 1, 16, 16, generator=gen)
        opt.zero_grad()
        net(xb).pow(2).mean().backward()
        opt.step()
    net.eval()
    zeros = zero_branches(net, find_branches(net, x))
    assert zeros, "a large λ drives some branch to exactly zero"
    y0 = net(x)
    res = prune_branches(net, x, zero_only=True)
    assert res.plan.n_removed >= 1
    assert torch.allclose(net(x), y0, atol=1e-5)


def test_googlenet_runs_after_removal():
    torch.manual_seed(0)
    m = torchvision.models.googlenet(init_weights=False, aux_logits=False,
                                     num_classes=7).eval()
    x = torch.randn(1, 3, 64, 64)
    names = ["inception3a.branch3", "inception4b.branch2", "inception5b.branch4"]
    _zero(m, names, x)
    y0 = m(x)
    plan = remove_branches(m, names, x)
    assert torch.allclose(m(x), y0, atol=1e-5)
    assert plan.removed["inception4b"] == ["inception4b.branch2"]
    assert m(torch.randn(2, 3, 80, 80)).shape == (2, 7)


def test_inception_v3_runs_after_removal():
    torch.manual_seed(0)
    m = torchvision.models.inception_v3(init_weights=False, aux_logits=False,
                                        num_classes=7).eval()
    x = torch.randn(1, 3, 75, 75)
    names = ["Mixed_5b.branch5x5", "Mixed_6a.branch3x3dbl", "Mixed_7b.branch3x3"]
    _zero(m, names, x)
    y0 = m(x)
    remove_branches(m, names, x)
    assert torch.allclose(m(x), y0, atol=1e-5)
    assert m(torch.randn(2, 3, 107, 107)).shape == (2, 7)


def test_restore_removes_the_zeroed_branches_from_the_dense_weights():
    net, x = _net()
    dense = copy.deepcopy(net)
    dense_state = _state(dense)
    _zero(net, ["1.b3", "3.bp"], x)
    with torch.no_grad():  # "trained": every other weight moved too
        for p in net.parameters():
            p.mul_(0.5)
    res = prune_branches(net, x, zero_only=True, restore=dense_state)
    assert sorted(n for v in res.plan.removed.values() for n in v) == ["1.b3", "3.bp"]
    remove_branches(dense, ["1.b3", "3.bp"], x)
    _same_state(net, _state(dense))  # survivors carry the dense weights
    torch.testing.assert_close(net(x), dense(x), rtol=0, atol=0)


def test_restore_needs_zero_only_and_the_same_architecture():
    net, x = _net()
    before = _state(net)
    with pytest.raises(ValueError, match="zero_only"):
        prune_branches(net, x, n_branches=1, restore=before)
    bad = {k: v for k, v in before.items() if not k.startswith("7.")}
    with pytest.raises(ValueError, match="same architecture"):
        prune_branches(net, x, zero_only=True, restore=bad)
    _same_state(net, before)
