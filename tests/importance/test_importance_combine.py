"""random, normalizations and combine."""

from __future__ import annotations

import pytest
import torch
from importance_models import conv1_group, conv2_group

from prunekit.importance import ImportanceContext, combine, get
from prunekit.importance.normalize import by_mean, by_rank, normalizer


def test_random_is_seeded_per_group_and_ignores_global_rng(convnet):
    ctx = ImportanceContext()
    a = get("random")(convnet, conv1_group(), ctx)
    torch.manual_seed(123)
    assert torch.equal(get("random")(convnet, conv1_group(), ctx), a)
    assert not torch.equal(get("random")(convnet, conv2_group(), ctx), a[:4])
    assert not torch.equal(get("random")(convnet, conv1_group(), ImportanceContext(seed=1)), a)
    assert torch.equal(get("random", seed=1)(convnet, conv1_group(), ctx),
                       get("random")(convnet, conv1_group(), ImportanceContext(seed=1)))
    assert a.shape == (6,) and ((0 <= a) & (a < 1)).all()


def test_rank_normalization_averages_ties():
    scores = torch.tensor([3.0, 1.0, 3.0, 2.0, 10.0])
    # ranks 0..4: 1.0 -> 0, 2.0 -> 1, the two 3.0 share (2+3)/2, 10.0 -> 4
    assert torch.allclose(by_rank(scores), torch.tensor([2.5, 0, 2.5, 1, 4]).double() / 4)
    assert torch.equal(by_rank(torch.tensor([5.0])), torch.ones(1, dtype=torch.float64))
    assert torch.allclose(by_mean(torch.tensor([1.0, 3.0])), torch.tensor([0.5, 1.5]))
    assert torch.equal(by_mean(torch.zeros(3)), torch.zeros(3))
    with pytest.raises(ValueError, match="unknown normalize 'z'"):
        normalizer("z")


@pytest.mark.parametrize("normalize", ["rank", "mean"])
def test_combine_is_weighted_sum_of_normalized_scores(convnet, normalize):
    group, ctx = conv1_group(), ImportanceContext()
    l1, l2 = get("l1")(convnet, group, ctx), get("l2")(convnet, group, ctx)
    norm = normalizer(normalize)
    expected = 0.25 * norm(l1) + 0.75 * norm(l2)
    mixed = combine({"l1": 0.25, "l2": 0.75}, normalize=normalize)
    assert torch.allclose(mixed(convnet, group, ctx), expected)
    assert "l1: 0.25" in mixed.__name__


def test_combine_makes_scales_irrelevant_with_rank(convnet):
    group = conv1_group()
    scaled = lambda m, g, c: 1e6 * get("l2")(m, g, c)  # noqa: E731
    a = combine({"l1": 0.5, "l2": 0.5})(convnet, group)
    b = combine({"l1": 0.5, scaled: 0.5})(convnet, group)
    assert torch.allclose(a, b)


def test_combine_rejects_bad_weights():
    with pytest.raises(ValueError, match="non-empty"):
        combine({})
    with pytest.raises(ValueError, match="weight of l2"):
        combine({"l2": -1.0})
    with pytest.raises(ValueError, match="weight of l2"):
        combine({"l2": float("nan")})
    with pytest.raises(ValueError, match="unknown importance 'nope'"):
        combine({"nope": 1.0})
    with pytest.raises(ValueError, match="unknown normalize"):
        combine({"l2": 1.0}, normalize="zscore")
