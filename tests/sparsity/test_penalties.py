import cvxpy as cp
import numpy as np
import pytest
import torch

from prunekit.sparsity import (
    L1,
    FrobeniusNuclear,
    GroupLasso,
    NuclearNorm,
    OverlappingGroupLasso,
    SparseGroupLasso,
    TreeGroupLasso,
)

from .problems import GROUPS, OVERLAP, TREE

RNG = np.random.default_rng(3)


def _sgl_distance_reference(w, grad, groups, alpha, l1_ratio):
    """min ‖grad + s‖ over s ∈ ∂Ω(w), Ω = alpha·(ρ‖·‖₁ + (1 − ρ)Σ‖·_g‖), by cvxpy."""
    out = []
    for g in groups:
        wg, gg = w[g], grad[g]
        u, v = cp.Variable(len(g)), cp.Variable(len(g))
        cons = []
        for k in range(len(g)):
            cons.append(u[k] == np.sign(wg[k]) if wg[k] != 0 else cp.abs(u[k]) <= 1)
        nrm = np.linalg.norm(wg)
        cons.append(v == wg / nrm if nrm > 0 else cp.norm(v) <= 1)
        s = alpha * l1_ratio * u + alpha * (1 - l1_ratio) * v
        prob = cp.Problem(cp.Minimize(cp.norm(gg + s)), cons)
        prob.solve(solver="CLARABEL")
        out.append(prob.value)
    return np.array(out)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.4])
def test_subdiff_distance_matches_definition(l1_ratio):
    w = RNG.standard_normal(12)
    w[[3, 4, 9]] = 0.0  # two zero groups
    w[6] = 0.0  # a zero inside a non-zero group
    grad = RNG.standard_normal(12)
    pen = SparseGroupLasso(GROUPS, 0.7, l1_ratio) if l1_ratio else GroupLasso(GROUPS, 0.7)
    ref = _sgl_distance_reference(w, grad, GROUPS, 0.7, l1_ratio)
    np.testing.assert_allclose(pen.subdiff_distance(w, grad), ref, atol=1e-6)


def test_subdiff_distance_includes_free_features():
    pen = GroupLasso([[0, 1]], 1.0, n_features=3)
    d = pen.subdiff_distance(np.zeros(3), np.array([0.5, 0.0, -2.0]))
    np.testing.assert_allclose(d, [0.0, 2.0])


def test_l1_subdiff():
    d = L1(1.0).subdiff_distance(np.array([1.0, 0.0, 0.0]), np.array([-1.0, 0.5, 3.0]))
    np.testing.assert_allclose(d, [0.0, 0.0, 2.0])


@pytest.mark.parametrize("make", [
    lambda: GroupLasso(GROUPS, 0.3, weights="sqrt"),
    lambda: SparseGroupLasso(GROUPS, 0.3, 0.5),
    lambda: TreeGroupLasso(TREE, 0.3),
    lambda: OverlappingGroupLasso(OVERLAP, 0.3),
    lambda: L1(0.3),
])
def test_values_and_torch_agree(make):
    pen = make()
    w = RNG.standard_normal(12)
    grad = RNG.standard_normal(12)
    assert pen.value(w) == pytest.approx(pen.value(torch.tensor(w)), rel=1e-12)
    np.testing.assert_allclose(pen.prox(torch.tensor(w), 0.7).numpy(), pen.prox(w, 0.7),
                               atol=1e-10)
    np.testing.assert_allclose(pen.subdiff_distance(torch.tensor(w), torch.tensor(grad)).numpy(),
                               pen.subdiff_distance(w, grad), atol=1e-10)


def test_group_lasso_value_formula():
    w = RNG.standard_normal(12)
    pen = GroupLasso(GROUPS, 0.5, weights=[1, 2, 3, 4, 5])
    ref = 0.5 * sum(k * np.linalg.norm(w[g]) for k, g in zip([1, 2, 3, 4, 5], GROUPS))
    assert pen.value(w) == pytest.approx(ref, rel=1e-12)


def test_tree_value_counts_every_node():
    w = RNG.standard_normal(12)
    ref = 0.5 * sum(np.linalg.norm(w[g]) for g in TREE)
    assert TreeGroupLasso(TREE, 0.5).value(w) == pytest.approx(ref, rel=1e-12)


def test_spectral_values():
    W = RNG.standard_normal((2, 4, 3))
    s = np.linalg.svd(W, compute_uv=False)
    assert NuclearNorm(0.5).value(W) == pytest.approx(0.5 * s.sum())
    ref = 0.5 * sum(0.7 * np.linalg.norm(m) + 0.3 * sv.sum() for m, sv in zip(W, s))
    assert FrobeniusNuclear(0.5, 0.3).value(W) == pytest.approx(ref)
    flat = NuclearNorm(0.5, shape=(4, 3))
    assert flat.value(W.reshape(-1)) == pytest.approx(0.5 * s.sum())
    assert flat.prox(W.reshape(-1), 1.0).shape == (24,)


def test_frobenius_term_zeros_whole_matrices():
    W = np.stack([np.eye(3) * 0.1, np.eye(3) * 5])
    out = FrobeniusNuclear(1.0, 0.5).prox(W, 1.0)
    assert np.all(out[0] == 0) and np.linalg.matrix_rank(out[1]) == 3


@pytest.mark.parametrize("make, field", [
    (lambda: GroupLasso(GROUPS, -1.0), "alpha"),
    (lambda: GroupLasso(GROUPS, float("nan")), "alpha"),
    (lambda: GroupLasso([[0, 1], [1, 2]], 1.0), "overlapping"),
    (lambda: SparseGroupLasso(GROUPS, 1.0, l1_ratio=1.5), "l1_ratio"),
    (lambda: TreeGroupLasso([[0, 1], [1, 2]], 1.0), "tree-structured"),
    (lambda: GroupLasso([[0, 4]], 1.0, n_features=3), "out of range"),
    (lambda: FrobeniusNuclear(1.0, nuclear_ratio=2.0), "nuclear_ratio"),
])
def test_bad_penalty_arguments(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_spectral_needs_matrix():
    with pytest.raises(ValueError, match="matrix"):
        NuclearNorm(1.0).prox(np.ones(4), 1.0)
