import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from prunekit.sparsity import Groups
from prunekit.sparsity.prox import (
    group_scale,
    prox_frob_nuclear,
    prox_group_l2,
    prox_l1,
    prox_nuclear,
    prox_overlap,
    prox_sparse_group,
    prox_tree,
)

from .reference import prox_reference, spectral_prox_reference

RNG = np.random.default_rng(0)
TREE = [[0, 1, 2, 3, 4, 5], [0, 1, 2], [3, 4], [0], [1, 2], [6, 7]]
OVERLAP = [[0, 1, 2], [2, 3, 4], [4, 5, 0], [6, 7], [1, 6]]


def test_seed_example():
    g = Groups.from_lists([[0, 1], [2, 3]])
    out = prox_group_l2(np.array([3.0, 4.0, 1.0, 2.0]), 3.0, 1.0, g)
    np.testing.assert_allclose(out, [1.2, 1.6, 0.0, 0.0], atol=1e-15)


def test_group_scale_zero_norm_and_vector_tau():
    s = group_scale(np.array([0.0, 5.0, 2.0]), np.array([1.0, 3.0, 2.0]))
    np.testing.assert_allclose(s, [0.0, 0.4, 0.0])


def test_prox_does_not_mutate_input():
    x = RNG.standard_normal(6)
    before = x.copy()
    prox_group_l2(x, 0.5, 1.0, Groups.from_lists([[0, 1, 2], [3, 4]]))
    prox_tree(x, 0.5, 1.0, Groups.from_lists(TREE[:5], partition=False))
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("seed", range(3))
def test_group_l2_matches_cvxpy(seed):
    rng = np.random.default_rng(seed)
    groups = [[0, 1, 2], [3, 4], [5], [6, 7, 8, 9]]
    w = rng.uniform(0.5, 2, 4)
    v = rng.standard_normal(11) * 2
    out = prox_group_l2(v, 0.7, 1.3, Groups.from_lists(groups, 11, w))
    ref = prox_reference(v, 0.7, groups, w, step=1.3)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert out[10] == v[10]  # free feature untouched


@pytest.mark.parametrize("seed", range(3))
def test_sparse_group_matches_cvxpy(seed):
    rng = np.random.default_rng(seed)
    groups = [[0, 1, 2], [3, 4], [5, 6, 7]]
    v = rng.standard_normal(8) * 2
    out = prox_sparse_group(v, 1.0, 0.8, Groups.from_lists(groups), l1_ratio=0.3)
    ref = prox_reference(v, 0.7, groups, l1=0.3, step=0.8)
    np.testing.assert_allclose(out, ref, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_l1_matches_cvxpy(seed):
    v = np.random.default_rng(seed).standard_normal(7)
    ref = prox_reference(v, 0.0, [[j] for j in range(7)], l1=0.4)
    np.testing.assert_allclose(prox_l1(v, 0.4, 1.0), ref, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_tree_matches_cvxpy(seed):
    v = np.random.default_rng(seed).standard_normal(8) * 2
    w = np.random.default_rng(seed + 10).uniform(0.5, 1.5, len(TREE))
    g = Groups.from_lists(TREE, 8, w, partition=False)
    ref = prox_reference(v, 0.6, TREE, w)
    np.testing.assert_allclose(prox_tree(v, 0.6, 1.0, g), ref, atol=1e-6)
    np.testing.assert_allclose(prox_overlap(v, 0.6, 1.0, g), ref, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_overlap_matches_cvxpy(seed):
    v = np.random.default_rng(seed).standard_normal(8) * 2
    g = Groups.from_lists(OVERLAP, 8, partition=False)
    ref = prox_reference(v, 0.5, OVERLAP)
    np.testing.assert_allclose(prox_overlap(v, 0.5, 1.0, g), ref, atol=1e-6)


@pytest.mark.parametrize("ratio", [1.0, 0.4, 0.0])
def test_spectral_prox_matches_cvxpy(ratio):
    V = RNG.standard_normal((4, 3)) * 2
    ref = spectral_prox_reference(V, 1.5, ratio)
    out = prox_frob_nuclear(V, 1.5, 1.0, ratio)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    if ratio == 1.0:
        np.testing.assert_allclose(prox_nuclear(V, 1.5, 1.0), ref, atol=1e-6)


def test_2d_prox_beats_brute_force_grid():
    """Prox of a single 2-D group: its objective is <= every point of a fine grid."""
    v, tau = np.array([1.3, -0.7]), 0.5
    out = prox_group_l2(v[None, :], tau, 1.0)[0]

    def obj(x):
        return 0.5 * np.sum((x - v) ** 2, -1) + tau * np.linalg.norm(x, axis=-1)

    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 801), np.linspace(-2, 2, 801)), -1)
    assert obj(out) <= obj(grid).min() + 1e-12
    assert np.linalg.norm(out - grid.reshape(-1, 2)[obj(grid).argmin()]) < 1e-2


def test_rows_are_groups_for_2d_input():
    x = RNG.standard_normal((5, 3))
    g = Groups.from_lists([[0, 1], [2, 3, 4]])
    ref = prox_reference(x, 0.8, [[0, 1], [2, 3, 4]])
    np.testing.assert_allclose(prox_group_l2(x, 0.8, 1.0, g), ref, atol=1e-6)


@pytest.mark.parametrize("fn", ["group", "sparse", "tree", "stacked", "nuclear", "frob"])
def test_torch_equals_numpy(fn):
    x = RNG.standard_normal((8, 3))
    g = Groups.from_lists([[0, 1, 2], [3, 4], [6, 7]])
    tree = Groups.from_lists(TREE, 8, partition=False)
    calls = {
        "group": lambda a: prox_group_l2(a, 0.9, 1.0, g),
        "sparse": lambda a: prox_sparse_group(a, 0.9, 1.0, g, 0.5),
        "tree": lambda a: prox_tree(a, 0.9, 1.0, tree),
        "stacked": lambda a: prox_group_l2(a, 1.1, 1.0),
        "nuclear": lambda a: prox_nuclear(a.reshape(2, 4, 3), 0.9, 1.0),
        "frob": lambda a: prox_frob_nuclear(a.reshape(2, 4, 3), 0.9, 1.0, 0.3),
    }
    out_np = calls[fn](x)
    out_t = calls[fn](torch.tensor(x))
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), out_np, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, 6, elements=st.floats(-10, 10)), st.floats(0, 5))
def test_group_prox_properties(v, tau):
    """Firm non-expansiveness ingredients: norm shrinks by exactly tau (or to 0), direction kept."""
    g = Groups.from_lists([[0, 1, 2], [3, 4, 5]])
    out = prox_group_l2(v, tau, 1.0, g)
    for idx in ([0, 1, 2], [3, 4, 5]):
        n_in, n_out = np.linalg.norm(v[idx]), np.linalg.norm(out[idx])
        np.testing.assert_allclose(n_out, max(n_in - tau, 0.0), atol=1e-9)
        if n_out > 0:
            np.testing.assert_allclose(out[idx] * n_in, v[idx] * n_out, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, 6, elements=st.floats(-10, 10)),
       arrays(np.float64, 6, elements=st.floats(-10, 10)))
def test_prox_is_nonexpansive(a, b):
    g = Groups.from_lists(TREE[:5], 6, partition=False)
    pa, pb = prox_tree(a, 1.0, 1.0, g), prox_tree(b, 1.0, 1.0, g)
    assert np.linalg.norm(pa - pb) <= np.linalg.norm(a - b) + 1e-9
