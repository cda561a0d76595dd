"""Block scores and the structure registry."""

from __future__ import annotations

import math

import pytest
import torch
from depth_models import ResMLP

from prunekit import structures
from prunekit.structures import find_blocks, score_blocks, skipped


@pytest.fixture
def model_and_x():
    torch.manual_seed(0)
    m = ResMLP().eval()
    with torch.no_grad():
        m.blocks[1].fc2.weight.zero_()
        m.blocks[1].fc2.bias.zero_()
    return m, torch.randn(16, 4)


@pytest.mark.parametrize("method", ["angular", "cosine", "loss"])
def test_identity_block_scores_zero_and_others_positive(model_and_x, method):
    m, x = model_and_x
    s = score_blocks(m, find_blocks(m, x), x, method=method)
    assert s["blocks.1"] == pytest.approx(0.0, abs=1e-7)
    assert all(v > 1e-4 for k, v in s.items() if k != "blocks.1")


def test_angular_matches_hand_computation(model_and_x):
    m, x = model_and_x
    with torch.no_grad():
        h = m.stem(x)
        y = m.blocks[0](h)
    cos = torch.nn.functional.cosine_similarity(h.double(), y.double(), dim=-1)
    expected = float((torch.arccos(cos.clamp(-1, 1)) / math.pi).mean())
    s = score_blocks(m, find_blocks(m, x), x, method="angular")
    assert s["blocks.0"] == pytest.approx(expected, rel=1e-9)


def test_loss_score_with_loss_fn_matches_skipping(model_and_x):
    m, x = model_and_x
    target = torch.randn(16, 3)
    loss = torch.nn.functional.mse_loss
    s = score_blocks(m, find_blocks(m, x), method="loss", batches=[(x, target)], loss_fn=loss)
    with torch.no_grad():
        base = loss(m(x), target)
        with skipped(m, "blocks.2"):
            skip = loss(m(x), target)
    assert s["blocks.2"] == pytest.approx(float(skip - base), rel=1e-6)


def test_registered_importance_scores_blocks(model_and_x):
    m, x = model_and_x
    s = score_blocks(m, find_blocks(m, x), x, method="l2")
    w = torch.cat([p.detach().flatten() for p in m.blocks[3].parameters()])
    assert s["blocks.3"] == pytest.approx(float(w.double().norm()), rel=1e-6)


def test_unknown_method_and_missing_data(model_and_x):
    m, x = model_and_x
    blocks = find_blocks(m, x)
    with pytest.raises(ValueError, match="unknown block score"):
        score_blocks(m, blocks, x, method="nope")
    with pytest.raises(ValueError, match="no calibration data"):
        score_blocks(m, blocks)


def test_structure_registry():
    assert "depth" in structures.available()
    depth = structures.get("depth")
    assert depth.find is find_blocks and depth.score is score_blocks
    with pytest.raises(ValueError, match="known: .*depth"):
        structures.get("width?")
    with pytest.raises(ValueError, match="already registered"):
        structures.register(depth)
