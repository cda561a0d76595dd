"""rank_channels: layer-wise counts, global threshold, bounds, rounding, errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prunekit.importance import rank_channels


def scores_of(*sizes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"g{i}": torch.rand(n, generator=g) for i, n in enumerate(sizes)}


def test_layerwise_removes_exact_counts_of_lowest():
    scores = scores_of(10, 7, 64, 3)
    plan = rank_channels(scores, ratio=0.5)
    assert {gid: len(v) for gid, v in plan.items()} == {"g0": 5, "g1": 3, "g2": 32, "g3": 1}
    for gid, removed in plan.items():
        s = scores[gid]
        expected = sorted(torch.argsort(s)[: len(removed)].tolist())
        assert removed == expected
        kept = [c for c in range(len(s)) if c not in removed]
        assert s[removed].max() <= s[kept].min()


def test_ratio_edge_cases():
    assert rank_channels({"a": torch.rand(100)}, ratio=0.29)["a"].__len__() == 29
    assert rank_channels({"a": torch.rand(5)}, ratio=0.0) == {"a": []}
    assert len(rank_channels({"a": torch.rand(2)}, ratio=0.99, min_keep=0)["a"]) == 1


def test_ties_go_to_the_lower_index():
    assert rank_channels({"a": torch.ones(6)}, ratio=0.5) == {"a": [0, 1, 2]}


def test_min_keep_and_max_ratio_bound_each_group():
    scores = scores_of(4, 10)
    plan = rank_channels(scores, ratio=0.9, min_keep=3)
    assert len(plan["g0"]) == 1 and len(plan["g1"]) == 7
    plan = rank_channels(scores, ratio=0.8, max_ratio=0.5)
    assert len(plan["g0"]) == 2 and len(plan["g1"]) == 5


def test_round_to_gives_nearest_allowed_multiple():
    plan = rank_channels({"a": torch.rand(64)}, ratio=0.3, round_to=8)
    assert len(plan["a"]) == 16                   # kept 45 -> 48 (nearer than 40)
    plan = rank_channels({"a": torch.rand(64)}, ratio=0.25, round_to=8)
    assert len(plan["a"]) == 16                   # kept 48 is already a multiple
    plan = rank_channels({"a": torch.rand(12)}, ratio=0.5, round_to=4)
    assert len(plan["a"]) == 4                    # kept 6: 4 and 8 tie -> 8 (keep more)
    plan = rank_channels({"a": torch.rand(6)}, ratio=0.9, round_to=8)
    assert plan["a"] == []                        # no multiple of 8 fits: left whole
    plan = rank_channels({"a": torch.rand(20)}, ratio=0.95, round_to=8, min_keep=9)
    assert len(plan["a"]) == 4                    # bounds first: keep >= 9 -> 16


def test_global_uses_one_threshold_on_mean_normalized_scores():
    scores = {"small": torch.tensor([1.0, 1.1, 1.2, 10.0]),
              "big": 1000 * torch.tensor([5.0, 1, 1, 1, 1, 1, 1, 1])}
    plan = rank_channels(scores, global_ranking=True, ratio=0.5)
    # normalized: small ≈ [.30 .33 .36 3.0], big ≈ [3.33 .67 ...]: 6 lowest overall
    assert plan == {"small": [0, 1, 2], "big": [1, 2, 3]}
    assert rank_channels(scores, ratio=0.5) == {"small": [0, 1], "big": [1, 2, 3, 4]}
    # brute force on the normalized scores, ties by group order then channel
    normed = torch.cat([s / s.mean() for s in scores.values()]).tolist()
    lowest = sorted(range(12), key=lambda i: (normed[i], i))[:6]
    assert plan == {"small": sorted(i for i in lowest if i < 4),
                    "big": sorted(i - 4 for i in lowest if i >= 4)}


def test_global_respects_group_bounds():
    scores = {"weak": torch.full((8,), 0.01) + torch.arange(8) * 1e-3,
              "strong": torch.linspace(1.0, 2.0, 8)}
    plan = rank_channels(scores, global_ranking=True, ratio=0.5, normalize="none",
                         max_ratio=0.75)
    assert len(plan["weak"]) == 6                  # capped by max_ratio
    assert len(plan["strong"]) == 2                # the rest of the budget of 8
    plan = rank_channels(scores, global_ranking=True, ratio=0.5, normalize="none")
    assert plan["weak"] == list(range(7)) and len(plan["strong"]) == 1   # keeps >= 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"ratio": 1.0}, "ratio"), ({"ratio": -0.1}, "ratio"), ({"ratio": "0.5"}, "ratio"),
     ({"min_keep": -1}, "min_keep"), ({"min_keep": 1.5}, "min_keep"),
     ({"max_ratio": 0.0}, "max_ratio"), ({"round_to": 0}, "round_to"),
     ({"round_to": True}, "round_to"), ({"normalize": "z", "global_ranking": True}, "normalize")],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        rank_channels(scores_of(4), **kwargs)


def test_bad_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN or inf"):
        rank_channels({"a": torch.tensor([1.0, float("nan")])})
    with pytest.raises(ValueError, match="1-D"):
        rank_channels({"a": torch.ones(2, 2)})


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    ratio=st.floats(0.0, 0.95),
    round_to=st.sampled_from([1, 2, 4, 8]),
    min_keep=st.integers(0, 6),
    max_ratio=st.floats(0.1, 1.0),
    global_ranking=st.booleans(),
    seed=st.integers(0, 10),
)
def test_plan_invariants(sizes, ratio, round_to, min_keep, max_ratio, global_ranking, seed):
    scores = scores_of(*sizes, seed=seed)
    plan = rank_channels(scores, global_ranking=global_ranking, ratio=ratio, min_keep=min_keep,
                         max_ratio=max_ratio, round_to=round_to)
    assert plan.keys() == scores.keys()
    for gid, removed in plan.items():
        n = scores[gid].numel()
        kept = n - len(removed)
        lower = min(n, max(1, min_keep, math.ceil((1 - max_ratio) * n - 1e-9)))
        assert removed == sorted(set(removed)) and all(0 <= c < n for c in removed)
        assert kept >= lower
        assert kept == n or kept % round_to == 0
        if removed and len(removed) < n:
            rest = [c for c in range(n) if c not in removed]
            assert scores[gid][removed].max() <= scores[gid][rest].min()
    if not global_ranking and round_to == 1:
        for gid, removed in plan.items():
            n = scores[gid].numel()
            target = math.floor(ratio * n + 1e-9)
            lower = min(n, max(1, min_keep, math.ceil((1 - max_ratio) * n - 1e-9)))
            assert len(removed) == min(target, n - lower)


def test_group_ratios_override_per_group():
    scores = scores_of(10, 10, 10)
    plan = rank_channels(scores, ratio=0.5, group_ratios={"g1": 0.2, "g2": 0.0})
    assert [len(plan[g]) for g in ("g0", "g1", "g2")] == [5, 2, 0]
    plan = rank_channels(scores, global_ranking=True, ratio=0.5, group_ratios={"g1": 0.2})
    assert len(plan["g1"]) == 2 and len(plan["g0"]) + len(plan["g2"]) == 10
    with pytest.raises(ValueError, match="unknown group ids \\['nope'\\]"):
        rank_channels(scores, group_ratios={"nope": 0.1})
    with pytest.raises(ValueError, match="group_ratios\\['g0'\\]"):
        rank_channels(scores, group_ratios={"g0": 1.0})
