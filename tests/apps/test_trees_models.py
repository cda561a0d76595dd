"""Trees, structured signals and exact model projections (checked by brute force)."""

import itertools

import numpy as np
import pytest

from prunekit.apps.models import BlockModel, SparseModel, TreeModel
from prunekit.apps.signals import block_groups, block_sparse_signal, tree_sparse_signal
from prunekit.apps.trees import (
    binary_wavelet_tree,
    check_parent,
    is_tree_consistent,
    quadtree_wavelet_tree,
    subtree_groups,
    tree_closure,
)


def _brute_tree(energy, parent, k):
    best = -1.0
    for s in itertools.combinations(range(len(parent)), k):
        mask = np.zeros(len(parent), bool)
        mask[list(s)] = True
        if is_tree_consistent(mask, parent):
            best = max(best, energy[mask].sum())
    return best


@pytest.mark.parametrize("seed", range(40))
def test_tree_projection_is_optimal(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 10))
    parent = np.array([-1] + [int(rng.integers(-1, i)) for i in range(1, n)])
    v = rng.standard_normal(n)
    k = int(rng.integers(0, n + 1))
    mask = TreeModel(parent).support(v, k)
    assert mask.sum() == k and is_tree_consistent(mask, parent)
    assert (v[mask] ** 2).sum() == pytest.approx(_brute_tree(v ** 2, parent, k), abs=1e-12)


def test_tree_projection_beats_greedy_when_a_parent_is_small():
    parent = np.array([-1, 0, 0, 1])        # root 0; 3 hangs under a tiny node 1
    v = np.array([1.0, 0.01, 0.5, 5.0])
    mask = TreeModel(parent).support(v, 3)
    assert mask.tolist() == [True, True, False, True]


def test_block_and_sparse_projection():
    groups = block_groups(12, 3)
    v = np.array([0, 0, 0, 1, 1.1, 1, 0, 3, 0, 0.5, 0.5, 0.5])
    mask = BlockModel.from_lists(groups, 12).support(v, 2)
    assert np.flatnonzero(mask).tolist() == [3, 4, 5, 6, 7, 8]
    assert np.flatnonzero(SparseModel().support(v, 2)).tolist() == [4, 7]
    with pytest.raises(ValueError, match="overlap"):
        BlockModel.from_lists([[0, 1], [1, 2]], 3)
    with pytest.raises(ValueError, match="cover"):
        BlockModel.from_lists([[0, 1]], 3)


def test_subtree_groups_and_closure():
    parent = binary_wavelet_tree(8)
    groups = subtree_groups(parent)
    assert groups[0] == list(range(8)) and groups[2] == [2, 4, 5] and groups[7] == [7]
    mask = np.zeros(8, bool)
    mask[6] = True
    assert np.flatnonzero(tree_closure(mask, parent)).tolist() == [0, 1, 3, 6]
    assert not is_tree_consistent(mask, parent)


def test_check_parent_rejects_cycles_and_bad_entries():
    with pytest.raises(ValueError, match="cycle"):
        check_parent(np.array([1, 0]))
    with pytest.raises(ValueError, match="-1"):
        check_parent(np.array([-1, 5]))
    with pytest.raises(TypeError):
        check_parent(np.array([-1.0, 0.0]))


def test_generated_signals_have_their_structure():
    parent = quadtree_wavelet_tree(16, 2)
    for seed in range(5):
        _, support = tree_sparse_signal(parent, 30, rng=seed)
        assert support.sum() == 30 and is_tree_consistent(support, parent)
        x, support = block_sparse_signal(64, 8, 3, rng=seed)
        assert support.reshape(8, 8).any(1).sum() == 3 and np.all(x[~support] == 0)
