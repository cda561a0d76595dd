"""Structured recovery: block structure beats plain L1 at the same m; tree supports."""

import numpy as np
import pytest

from prunekit.apps.greedy import block_mmp, block_omp, cosamp
from prunekit.apps.models import TreeModel
from prunekit.apps.operators import make_operator
from prunekit.apps.phase import PhaseConfig, m_at_level, make_problem, phase_transition
from prunekit.apps.sensing import RECOVERY, StructureInfo, lasso_recover, recover, tree_penalty
from prunekit.apps.trees import binary_wavelet_tree, is_tree_consistent


def _rel_err(x_hat, x):
    return np.linalg.norm(x_hat - x) / np.linalg.norm(x)


def test_block_sparse_exact_where_plain_l1_fails():
    """n=128, 2 active blocks of 8 (k=16), m=40 Gaussian measurements, 6 trials."""
    cfg = PhaseConfig(n=128, structure="block", ks=(16,), ms=(40,), trials=6,
                      success_tol=1e-6)
    methods = ["l1", "group-lasso", "group-lasso-rw", "cosamp-block", "block-mmp"]
    res = phase_transition(methods, cfg, progress=False)
    rates = {k: v[0][0] for k, v in res["rates"].items()}
    assert rates["l1"] <= 1 / 3                       # plain L1 fails in most trials
    assert rates["group-lasso"] == 1.0 and rates["group-lasso-rw"] == 1.0   # on the core
    assert rates["cosamp-block"] == 1.0 and rates["block-mmp"] == 1.0


def test_recovered_tree_supports_are_rooted_subtrees():
    cfg = PhaseConfig(n=64, structure="tree", ks=(8,), ms=(40,), trials=1)
    rng = np.random.default_rng(5)
    x, info = make_problem(cfg, 8, rng)
    a = make_operator("gaussian", 40, 64, rng).dense()
    for method in ("tree-lasso", "cosamp-tree"):
        x_hat = recover(method, a, a @ x, info)
        assert is_tree_consistent(x_hat != 0, info.parent), method
        assert _rel_err(x_hat, x) < 1e-6, method


def test_tree_lasso_path_supports_are_rooted():
    """Every stage of the tree-lasso continuation selects a rooted subtree."""
    from prunekit.sparsity import FISTA, Quadratic

    parent = binary_wavelet_tree(32)
    info = StructureInfo(n=32, k=6, parent=parent)
    rng = np.random.default_rng(0)
    a, y = rng.standard_normal((20, 32)), rng.standard_normal(20)
    amax = tree_penalty(info, 1.0).dual_norm(a.T @ y / 20)
    for r in (0.9, 0.5, 0.2, 0.05):
        w = FISTA(max_iter=3000, tol=1e-10).solve(a, y, Quadratic(),
                                                   tree_penalty(info, r * amax)).coef
        assert is_tree_consistent(w != 0, parent)


def test_greedy_methods_on_an_operator_match_the_dense_matrix():
    cfg = PhaseConfig(n=64, structure="block", ks=(16,), ms=(40,), trials=1)
    rng = np.random.default_rng(1)
    x, info = make_problem(cfg, 16, rng)
    op = make_operator("dct", 40, 64, rng)
    y = op.matvec(x)
    for rec in (block_omp(op, y, info.groups), block_mmp(op, y, info.groups),
                block_omp(op.dense(), y, info.groups)):
        assert _rel_err(rec.x, x) < 1e-8


def test_cosamp_tree_returns_tree_supports_even_when_it_fails():
    parent = binary_wavelet_tree(64)
    rng = np.random.default_rng(2)
    a, y = rng.standard_normal((10, 64)), rng.standard_normal(10)
    rec = cosamp(a, y, TreeModel(parent), 5, max_iter=5)
    assert rec.support.sum() <= 5 and is_tree_consistent(rec.support, parent)


def test_lasso_recover_without_refit_returns_the_lasso():
    from prunekit.sparsity import L1

    rng = np.random.default_rng(3)
    a, y = rng.standard_normal((30, 50)), rng.standard_normal(30)
    x = lasso_recover(a, y, L1, ratios=(0.5,), refit=False)
    amax = np.abs(a.T @ y).max() / 30
    grad = a.T @ (a @ x - y) / 30                     # KKT of the lasso at α = 0.5 α_max
    on = x != 0
    assert np.allclose(grad[on], -0.5 * amax * np.sign(x[on]), atol=1e-4 * amax)
    assert np.all(np.abs(grad[~on]) <= 0.5 * amax * (1 + 1e-4))


def test_m_at_level_and_errors():
    assert m_at_level([10, 20, 30, 40], [0.2, 0.95, 0.8, 1.0]) == 40
    assert m_at_level([10, 20], [0.2, 0.5]) is None
    with pytest.raises(ValueError, match="method"):
        recover("magic", np.eye(3), np.ones(3), StructureInfo(n=3, k=1))
    with pytest.raises(ValueError, match="groups"):
        RECOVERY["block-omp"](np.eye(3), np.ones(3), StructureInfo(n=3, k=1))
    with pytest.raises(ValueError, match="structure"):
        PhaseConfig(structure="ring")
    with pytest.raises(ValueError, match="multiples"):
        PhaseConfig(ks=(5,))
    with pytest.raises(ValueError, match="unknown methods"):
        phase_transition(["nope"], PhaseConfig(ms=(32,), trials=1), progress=False)
