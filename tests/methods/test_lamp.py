"""LAMP scores (Lee et al. 2021) and ``magnitude_masks(scope="lamp")`` against hand values."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prunekit.methods import apply_masks, get_masks, magnitude_masks, magnitude_prune
from prunekit.methods.magnitude import lamp_scores


def _two_layer(a, b):
    model = nn.Sequential(nn.Linear(3, 1, bias=False), nn.Linear(1, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([a]))
        model[1].weight.copy_(torch.tensor(b).view(2, 1))
    return model


def test_scores_by_hand():
    # |w| sorted 1 < 2 < 3: squares 1, 4, 9; tails 14, 13, 9
    s = lamp_scores(torch.tensor([[3.0, -1.0, 2.0]]))
    torch.testing.assert_close(s, torch.tensor([[1.0, 1 / 14, 4 / 13]]))
    # already-masked entries score −1 and leave the denominators
    s = lamp_scores(torch.tensor([3.0, -1.0, 2.0]), keep=torch.tensor([True, False, True]))
    torch.testing.assert_close(s, torch.tensor([1.0, -1.0, 4 / 13]))


def test_lamp_masks_by_hand_and_differ_from_global():
    model = _two_layer([1.0, 2.0, 3.0], [0.1, -0.2])
    # scores: layer 0 → 1/14, 4/13, 1; layer 1 → 0.01/0.05 = 0.2, 1. Two lowest: 1/14, 0.2
    lamp = magnitude_masks(model, 0.4, scope="lamp")
    assert lamp["0.weight"].tolist() == [[False, True, True]]
    assert lamp["1.weight"].view(-1).tolist() == [False, True]
    # global |w| empties the small layer instead
    glob = magnitude_masks(model, 0.4, scope="global")
    assert glob["1.weight"].view(-1).tolist() == [False, False]
    assert glob["0.weight"].tolist() == [[True, True, True]]


def test_lamp_masks_only_shrink_and_count_exactly():
    model = _two_layer([1.0, 2.0, 3.0], [0.1, -0.2])
    apply_masks(model, {"0.weight": torch.tensor([[True, True, False]])})  # drop the 3.0
    # survivors: layer 0 [1, 2] → 1/5, 1; layer 1 → 0.2, 1; the masked one counts first
    masks = magnitude_prune(model, 0.6, scope="lamp")
    assert masks["0.weight"].tolist() == [[False, True, False]]
    assert masks["1.weight"].view(-1).tolist() == [False, True]
    assert sum(int((~m).sum()) for m in get_masks(model).values()) == 3


def test_every_layer_keeps_its_largest_weight():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(200, 50), nn.ReLU(), nn.Linear(50, 3))
    with torch.no_grad():
        model[2].weight.mul_(1e-3)  # a tiny last layer: global |w| would remove all of it
    lamp = magnitude_masks(model, 0.99, scope="lamp")
    assert lamp["2.weight"].any()
    glob = magnitude_masks(model, 0.99, scope="global")
    assert not glob["2.weight"].any()
    assert sum(int((~m).sum()) for m in lamp.values()) == round(0.99 * (200 * 50 + 50 * 3))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=30),
       st.floats(0.01, 100))
def test_scores_match_definition_and_are_scale_invariant(values, scale):
    w = torch.tensor(values, dtype=torch.float64)
    s = lamp_scores(w).double()
    order = torch.sort(w.pow(2), stable=True).indices
    sq = w.pow(2)[order]
    for rank, idx in enumerate(order.tolist()):
        tail = float(sq[rank:].sum())
        expected = float(sq[rank]) / tail if tail > 0 else 0.0
        assert float(s[idx]) == pytest.approx(expected, rel=1e-5, abs=1e-7)
    if float(sq[-1]) > 0:
        assert float(s.max()) == pytest.approx(1.0)
    torch.testing.assert_close(lamp_scores(w * scale), lamp_scores(w), rtol=1e-5, atol=1e-6)


def test_subnormal_squares_still_score_exactly():
    # 4.9e-155² is a subnormal float64 (2.4e-309); a clamped denominator gave 2.4e-9, not 1
    w = torch.tensor([4.948819158763389e-155, -2e-155], dtype=torch.float64)
    s = lamp_scores(w)
    assert float(s[0]) == pytest.approx(1.0) and float(s[1]) == pytest.approx(4 / (4 + 24.49),
                                                                             rel=1e-3)
