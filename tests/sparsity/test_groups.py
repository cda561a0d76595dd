import numpy as np
import pytest

from prunekit.sparsity import Groups
from prunekit.sparsity.tree import tree_levels, tree_parents


def test_from_lists_builds_csr():
    g = Groups.from_lists([[0, 1], [3], [2, 4]], n_features=6, weights="sqrt")
    assert g.indices.tolist() == [0, 1, 3, 2, 4]
    assert g.ptr.tolist() == [0, 2, 3, 5]
    np.testing.assert_allclose(g.weights, np.sqrt([2, 1, 2]))
    assert g.to_lists() == [[0, 1], [3], [2, 4]]
    assert g.unpenalized.tolist() == [5]
    assert g.is_partition


def test_n_features_inferred_and_numpy_ints_accepted():
    g = Groups.from_lists([np.array([0, 1]), [np.int64(2)]])
    assert g.n_features == 3


@pytest.mark.parametrize("groups, n, word", [
    ([[0, 1], [1, 2]], 3, "overlapping"),
    ([[0, 1], []], 3, "empty"),
    ([[0, 5]], 3, "out of range"),
    ([[0, -1]], 3, "out of range"),
    ([[0, 1.5]], 3, "non-integer"),
    ([[0, True]], 3, "non-integer"),
    ([[0, 0]], 3, "repeated"),
    ([], 3, "at least one"),
    ("abc", 3, "expected a list"),
])
def test_bad_groups_raise_value_error_naming_problem(groups, n, word):
    with pytest.raises(ValueError, match=word):
        Groups.from_lists(groups, n_features=n)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [np.nan, 1.0], "cube"])
def test_bad_weights(weights):
    with pytest.raises(ValueError, match="weights"):
        Groups.from_lists([[0], [1]], 2, weights=weights)


def test_overlap_allowed_when_not_partition():
    g = Groups.from_lists([[0, 1], [1, 2]], 3, partition=False)
    assert not g.is_partition
    assert g.counts.tolist() == [1, 2, 1]


def test_tree_levels_are_disjoint_and_leaf_first():
    g = Groups.from_lists([[0, 1, 2, 3], [0, 1], [2], [0], [4, 5]], 6, partition=False)
    assert tree_parents(g).tolist() == [-1, 0, 0, 1, -1]
    levels = [lvl.to_lists() for lvl in tree_levels(g)]
    assert levels == [[[2], [0], [4, 5]], [[0, 1]], [[0, 1, 2, 3]]]
    assert all(lvl.is_partition for lvl in tree_levels(g))


def test_non_tree_rejected():
    g = Groups.from_lists([[0, 1], [1, 2]], 3, partition=False)
    with pytest.raises(ValueError, match="not tree-structured"):
        tree_parents(g)
