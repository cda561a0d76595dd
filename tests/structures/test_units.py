"""Depth units across structures: residual blocks and DenseNet layers in one list."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ConvResidual, assert_same_state, state_of
from torch import nn
from torchvision.models.densenet import DenseNet, _DenseBlock

import prunekit
from prunekit.hardware.depth_search import depth_to_speedup
from prunekit.measure import count_macs
from prunekit.structures.units import Unit, find_units, remove_units, replay_units

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def densenet() -> nn.Module:
    torch.manual_seed(0)
    return DenseNet(growth_rate=4, block_config=(3, 3), num_init_features=8, bn_size=2,
                    num_classes=5).eval()


def mixed() -> nn.Module:
    """A dense block (3 layers) and a residual stage (3 blocks) in one model."""
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        _DenseBlock(num_layers=3, num_input_features=8, bn_size=2, growth_rate=4, drop_rate=0),
        nn.Conv2d(20, 12, 1),
        nn.Sequential(*[ConvResidual(12) for _ in range(3)]),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 5)).eval()


def kernels(model: nn.Module) -> float:
    return float(sum(isinstance(m, nn.Conv2d) for m in model.modules()))


def test_dense_layers_are_units_and_each_block_keeps_one():
    units = find_units(densenet(), X)
    assert {u.kind for u in units} == {"connection"}
    for block in ("features.denseblock1", "features.denseblock2"):
        mine = [u.name for u in units if u.name.startswith(block + ":")]
        assert len(mine) == 2  # of three layers
        assert set(mine) < {f"{block}:denselayer{i}->*" for i in (1, 2, 3)}
    assert [u.score for u in units] == sorted(u.score for u in units)  # one kind: by score


def test_a_units_macs_are_what_removing_it_saves():
    model = densenet()
    macs0 = count_macs(model, X)
    for unit in find_units(model, X):
        cut = copy.deepcopy(model)
        remove_units(cut, [unit], X)
        assert macs0 - count_macs(cut, X) == unit.macs, unit.name


def test_removing_dense_layers_deletes_them_and_reloads_exactly(tmp_path):
    model = densenet()
    units = find_units(model, X)[:2]
    plans = remove_units(model, units, X)
    assert [p.structure for p in plans] == ["connection"]
    gone = {u.module for u in units}
    names = {n for n, _ in model.named_modules()}
    assert not gone & names and model(X).shape == (2, 5)
    path = prunekit.save(model, tmp_path / "ckpt", plan=plans)
    torch.testing.assert_close(prunekit.load(path, densenet).eval()(X), model(X),
                               rtol=0, atol=0)
    fresh = densenet()
    replay_units(fresh, plans, X)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(X), model(X), rtol=0, atol=0)


def test_both_kinds_interleave_and_go_together():
    model = mixed()
    units = find_units(model, X)
    kinds = [u.kind for u in units]
    assert sorted(kinds) == ["connection"] * 2 + ["depth"] * 3  # stage "3" left out
    assert kinds.index("connection") < len(kinds) - 1 - kinds[::-1].index("depth")
    pick = [next(u for u in units if u.kind == k) for k in ("connection", "depth")]
    plans = remove_units(model, pick, X)
    assert [p.structure for p in plans] == ["depth", "connection"]
    assert model(X).shape == (2, 5) and len(model[3]) == 2
    assert not {u.module for u in pick if u.kind == "connection"} & \
        {n for n, _ in model.named_modules()}


def test_a_failed_second_step_restores_the_first():
    model = mixed()
    before = state_of(model)
    out = model(X)
    residual = next(u for u in find_units(model, X) if u.kind == "depth")
    bogus = Unit("1:nolayer->*", "connection", "1.nolayer", 0.0, 0)
    with pytest.raises(ValueError, match="nolayer"):
        remove_units(model, [residual, bogus], X)
    assert_same_state(state_of(model), before)
    torch.testing.assert_close(model(X), out, rtol=0, atol=0)


def test_bad_units_are_refused_and_nothing_changes():
    model = densenet()
    with pytest.raises(ValueError, match="nothing to remove"):
        remove_units(model, [], X)
    with pytest.raises(ValueError, match="unknown kinds"):
        remove_units(model, [Unit("x", "width", "x", 0.0, 0)], X)


def test_depth_search_removes_dense_layers_to_a_measured_speedup():
    model = densenet()
    row = depth_to_speedup(model, X, 1.2, kernels, rounds=1)
    assert row is not None and row["measured_speedup"] >= 1.2
    assert [p.structure for p in row["plans"]] == ["connection"]
    assert row["blocks_removed"] == len(row["units"]) >= 1
    assert kernels(model) == kernels(densenet())  # the model itself is not changed


def test_channels_can_be_cut_after_dense_layers_went_and_all_of_it_reloads(tmp_path):
    # the depth+width path of the speed search: width pruning of a ConnectedDenseBlock model
    model = densenet()
    plans = remove_units(model, find_units(model, X)[:2], X)
    res = prunekit.prune(model, X, ratio=0.3)
    assert res.plan.n_removed > 0 and res.macs_after < res.macs_before
    path = prunekit.save(model, tmp_path / "ckpt", plan=[*plans, res.plan])
    torch.testing.assert_close(prunekit.load(path, densenet).eval()(X), model(X),
                               rtol=0, atol=0)


class ChannelFFT(nn.Module):
    """Mixes channels with no propagation rule: the dense block's output group is fixed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft(x, dim=1).real


def test_a_dense_block_whose_channels_cannot_be_cut_gives_no_units():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        _DenseBlock(num_layers=3, num_input_features=8, bn_size=2, growth_rate=4, drop_rate=0),
        ChannelFFT(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(20, 5)).eval()
    from prunekit.structures.connection import find_dense_blocks

    assert find_dense_blocks(model, X)  # the block is there, its layers cannot be cut
    assert find_units(model, X) == []
    assert depth_to_speedup(model, X, 1.5, kernels, rounds=1) is None


def composed(n_dense: int, growth: int, n_res: int, width: int) -> nn.Module:
    """Stem, a dense block of ``n_dense`` layers, a 1×1 transition, ``n_res`` residual
    blocks and a classifier."""
    torch.manual_seed(n_dense * 100 + growth * 10 + n_res)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        _DenseBlock(num_layers=n_dense, num_input_features=8, bn_size=2, growth_rate=growth,
                    drop_rate=0),
        nn.Conv2d(8 + n_dense * growth, width, 1),
        nn.Sequential(*[ConvResidual(width) for _ in range(n_res)]),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 5)).eval()


@settings(max_examples=8, deadline=None, derandomize=True)
@given(n_dense=st.integers(2, 4), growth=st.sampled_from([2, 4, 6]),
       n_res=st.integers(1, 3), width=st.sampled_from([4, 8]))
def test_every_unit_of_a_random_composition_removes_cleanly(n_dense, growth, n_res, width):
    model = composed(n_dense, growth, n_res, width)
    x = X[:1, :, :8, :8]
    units = find_units(model, x)
    kinds = [u.kind for u in units]
    # every residual block (a lone one cannot leave its stage: the stage is the unit) and
    # every dense layer but one
    assert kinds.count("depth") == n_res and kinds.count("connection") == n_dense - 1
    macs0 = count_macs(model, x)
    for unit in units:
        cut = copy.deepcopy(model)
        plans = remove_units(cut, [unit], x)
        assert cut(x).shape == (1, 5)
        assert macs0 - count_macs(cut, x) == unit.macs, unit.name
        fresh = composed(n_dense, growth, n_res, width)
        replay_units(fresh, plans, x)
        fresh.load_state_dict(cut.state_dict())
        torch.testing.assert_close(fresh(x), cut(x), rtol=0, atol=0)
