"""remove_blocks / prune_depth: physical removal, invariance, all-or-nothing, plans."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from depth_models import ResMLP, assert_same_state, state_copy
from torch import nn

from prunekit.structures import (
    DepthPlan,
    apply_depth_plan,
    find_blocks,
    prune_depth,
    remove_blocks,
)


def test_zeroed_residual_branch_is_free_to_remove():
    torch.manual_seed(0)
    m = torchvision.models.resnet18().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for name in ("layer1.1", "layer3.1"):  # BN after the last conv -> branch output 0
            m.get_submodule(name).bn2.weight.zero_()
            m.get_submodule(name).bn2.bias.zero_()
        dense = m(x)
    plan = remove_blocks(m, ["layer1.1", "layer3.1"], x)
    with torch.no_grad():
        diff = (m(x) - dense).abs().max().item()
    assert diff < 1e-5
    assert len(m.layer1) == 1 and len(m.layer3) == 1
    assert plan.removed == ["layer1.1", "layer3.1"]
    assert not any(k.startswith("layer1.1.") for k in m.state_dict())


def test_removing_a_live_block_changes_outputs():
    torch.manual_seed(0)
    m, x = ResMLP().eval(), torch.randn(5, 4)
    with torch.no_grad():
        dense = m(x)
    remove_blocks(m, ["blocks.1"], x)
    with torch.no_grad():
        assert (m(x) - dense).abs().max() > 1e-4


def test_mobilenet_v2_remove_and_run():
    m = torchvision.models.mobilenet_v2().eval()
    x = torch.randn(1, 3, 32, 32)
    n_before = len(m.features)
    plan = remove_blocks(m, ["features.5", "features.16"], x)
    assert len(m.features) == n_before - 2
    assert m(x).shape == (1, 1000)
    assert plan.containers["features"]["old_len"] == n_before


def test_too_many_blocks_is_a_clear_error_and_model_untouched():
    m, x = ResMLP(), torch.randn(3, 4)
    before = state_copy(m)
    with pytest.raises(ValueError, match="only 4 removable"):
        prune_depth(m, x, n_blocks=5)
    with pytest.raises(ValueError, match="at least one must stay"):
        remove_blocks(m, [f"blocks.{i}" for i in range(4)], x)
    with pytest.raises(ValueError, match="not removable"):
        remove_blocks(m, ["stem"], x)
    with pytest.raises(ValueError, match="duplicates"):
        remove_blocks(m, ["blocks.0", "blocks.0"], x)
    assert_same_state(m, before)
    assert len(m.blocks) == 4


def test_failed_forward_restores_bit_identical():
    class Indexed(ResMLP):  # refers to its fourth block by position: breaks if it goes
        def forward(self, x):
            h = self.stem(x)
            for i in range(4):
                h = self.blocks[i](h)
            return self.head(h)

    m, x = Indexed(), torch.randn(3, 4)
    before = state_copy(m)
    ids_before = [id(b) for b in m.blocks]
    with pytest.raises(RuntimeError, match="restored"):
        remove_blocks(m, ["blocks.2"], x)
    assert_same_state(m, before)
    assert [id(b) for b in m.blocks] == ids_before


def test_plan_json_roundtrip_and_replay_on_fresh_model():
    torch.manual_seed(0)
    m = ResMLP(n=5).eval()
    fresh = ResMLP(n=5).eval()
    fresh.load_state_dict(m.state_dict())
    x = torch.randn(6, 4)
    res = prune_depth(m, x, n_blocks=2, method="loss", iterative=True)
    data = json.loads(json.dumps(res.plan.to_dict()))
    apply_depth_plan(fresh, DepthPlan.from_dict(data), x)
    assert fresh.state_dict().keys() == m.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(fresh(x), m(x))
    assert len(res.scores) == 2 and len(data["removed"]) == 2


def test_prune_depth_removes_the_lowest_scored():
    torch.manual_seed(0)
    m, x = ResMLP().eval(), torch.randn(8, 4)
    with torch.no_grad():  # block 2 becomes the identity -> angular distance 0
        m.blocks[2].fc2.weight.zero_()
        m.blocks[2].fc2.bias.zero_()
    res = prune_depth(m, x, ratio=0.25)
    assert res.plan.removed == ["blocks.2"]
    assert res.scores[0]["blocks.2"] == pytest.approx(0.0, abs=1e-6)


def test_named_sequential_keeps_keys():
    m = torchvision.models.VisionTransformer(32, 8, 3, 2, 32, 64).eval()
    x = torch.randn(1, 3, 32, 32)
    remove_blocks(m, ["encoder.layers.encoder_layer_1"], x)
    assert list(m.encoder.layers._modules) == ["encoder_layer_0", "encoder_layer_2"]
    assert m(x).shape == (1, 1000)


def test_user_arguments_not_mutated():
    m, x = ResMLP(), torch.randn(3, 4)
    names = ("blocks.0",)
    blocks = find_blocks(m, x)
    n = len(blocks)
    remove_blocks(m, names, x, blocks=blocks)
    assert len(blocks) == n and isinstance(m.blocks, nn.ModuleList)


def test_replay_without_inputs_matches():
    torch.manual_seed(0)
    m, fresh = ResMLP(n=5).eval(), ResMLP(n=5).eval()
    fresh.load_state_dict(m.state_dict())
    x = torch.randn(6, 4)
    plan = remove_blocks(m, ["blocks.1", "blocks.3"], x)
    apply_depth_plan(fresh, plan.to_dict())
    with torch.no_grad():
        assert torch.equal(fresh(x), m(x))
    with pytest.raises(ValueError, match="plan expects 5"):
        apply_depth_plan(ResMLP(n=4), plan)
