import numpy as np
import pytest
import torch

from prunekit.sparsity import (
    ADMM,
    FISTA,
    L1,
    BlockCD,
    FrobeniusNuclear,
    GroupLasso,
    Logistic,
    MultinomialLogistic,
    NuclearNorm,
    OverlappingGroupLasso,
    Quadratic,
    SparseGroupLasso,
    TreeGroupLasso,
)
from prunekit.sparsity import _kernels as K

from .problems import GROUPS, OVERLAP, TREE, classification, regression, rel_gap
from .reference import solve_reference


def _quad_problem(seed):
    X, y = regression(seed)
    return X, y - y.mean()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("solver", [FISTA(tol=1e-9, max_iter=20000), BlockCD(tol=1e-10)])
def test_group_lasso_quadratic_vs_cvxpy(seed, solver):
    X, y = _quad_problem(seed)
    res = solver.solve(X, y, Quadratic(), GroupLasso(GROUPS, 0.1, weights="sqrt"))
    w = np.sqrt([len(g) for g in GROUPS])
    _, _, ref = solve_reference(X, y, "quadratic", 0.1, GROUPS, weights=w)
    assert res.converged
    assert rel_gap(res.objective, ref) < 1e-6


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("solver", [FISTA(tol=1e-9, max_iter=20000), BlockCD(tol=1e-10)])
def test_sparse_group_vs_cvxpy(seed, solver):
    X, y = _quad_problem(seed)
    res = solver.solve(X, y, Quadratic(), SparseGroupLasso(GROUPS, 0.1, l1_ratio=0.3))
    _, _, ref = solve_reference(X, y, "quadratic", 0.1, GROUPS, l1_ratio=0.3)
    assert rel_gap(res.objective, ref) < 1e-6


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("solver", [FISTA(tol=1e-9, max_iter=20000), BlockCD(tol=1e-10)])
def test_logistic_vs_cvxpy(seed, solver):
    X, y = classification(seed)
    y = 2.0 * y - 1
    res = solver.solve(X, y, Logistic(), GroupLasso(GROUPS, 0.02))
    _, _, ref = solve_reference(X, y, "logistic", 0.02, GROUPS)
    assert rel_gap(res.objective, ref) < 1e-6


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("solver", [FISTA(tol=1e-9, max_iter=20000), BlockCD(tol=1e-10)])
def test_multinomial_vs_cvxpy(seed, solver):
    X, y = classification(seed, n_classes=3)
    Y = np.eye(3)[y]
    res = solver.solve(X, Y, MultinomialLogistic(), GroupLasso(GROUPS, 0.02))
    _, _, ref = solve_reference(X, Y, "multinomial", 0.02, GROUPS)
    assert rel_gap(res.objective, ref) < 1e-6


@pytest.mark.parametrize("seed", range(3))
def test_tree_fista_vs_cvxpy(seed):
    X, y = _quad_problem(seed)
    res = FISTA(tol=1e-9, max_iter=20000).solve(X, y, Quadratic(), TreeGroupLasso(TREE, 0.1))
    _, _, ref = solve_reference(X, y, "quadratic", 0.1, TREE)
    assert rel_gap(res.objective, ref) < 1e-6


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("solver", [ADMM(tol=1e-10), FISTA(tol=1e-9, max_iter=5000)])
def test_overlap_vs_cvxpy(seed, solver):
    X, y = _quad_problem(seed)
    res = solver.solve(X, y, Quadratic(), OverlappingGroupLasso(OVERLAP, 0.1))
    _, _, ref = solve_reference(X, y, "quadratic", 0.1, OVERLAP)
    assert rel_gap(res.objective, ref) < 1e-6


def test_admm_woodbury_branch_vs_cvxpy():
    """p > n uses the Woodbury form of the linear solve."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((15, 12)), rng.standard_normal(15)
    res = ADMM(tol=1e-10).solve(X, y, Quadratic(), OverlappingGroupLasso(OVERLAP, 0.05))
    _, _, ref = solve_reference(X, y, "quadratic", 0.05, OVERLAP)
    assert rel_gap(res.objective, ref) < 1e-6


def test_nuclear_multitask_vs_cvxpy():
    import cvxpy as cp

    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((30, 6)), rng.standard_normal((30, 4))
    res = FISTA(tol=1e-9, max_iter=20000).solve(X, Y, Quadratic(), NuclearNorm(0.3))
    W = cp.Variable((6, 4))
    prob = cp.Problem(cp.Minimize(cp.sum_squares(Y - X @ W) / 60 + 0.3 * cp.normNuc(W)))
    prob.solve(solver="CLARABEL")
    assert rel_gap(res.objective, prob.value) < 1e-6
    assert np.linalg.matrix_rank(res.coef, tol=1e-8) < 4


def test_fista_torch_matches_numpy():
    X, y = _quad_problem(0)
    pen = SparseGroupLasso(GROUPS, 0.1, 0.3)
    a = FISTA(tol=1e-10, max_iter=5000).solve(X, y, Quadratic(), pen)
    b = FISTA(tol=1e-10, max_iter=5000).solve(torch.tensor(X), torch.tensor(y), Quadratic(), pen)
    assert isinstance(b.coef, torch.Tensor)
    np.testing.assert_allclose(b.coef.numpy(), a.coef, atol=1e-8)


def test_exact_group_zeros():
    X, y = _quad_problem(0)
    res = BlockCD().solve(X, y, Quadratic(), GroupLasso(GROUPS, 0.3))
    zero = [g for g in GROUPS if np.all(res.coef[g] == 0)]
    assert zero, "expected some groups to be exactly zero"


def test_w0_is_not_modified_and_warm_start_helps():
    X, y = _quad_problem(1)
    pen = GroupLasso(GROUPS, 0.05)
    cold = BlockCD(tol=1e-10).solve(X, y, Quadratic(), pen)
    w0 = cold.coef.copy()
    warm = BlockCD(tol=1e-10).solve(X, y, Quadratic(), pen, w0=w0)
    np.testing.assert_array_equal(w0, cold.coef)
    assert warm.n_iter <= cold.n_iter


def test_kernels_pure_python_fallback_agrees():
    """The numba kernels' Python source (the fallback without numba) gives the same epoch."""
    if not K.HAVE_NUMBA:
        pytest.skip("numba not installed: the Python path is the only one")
    X, y = _quad_problem(2)
    X = np.asfortranarray(X)
    args = [np.arange(5), np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
            np.array([0, 3, 5, 9, 10, 12]), np.full(5, 0.1), np.zeros(12),
            np.full(5, 3.0), X.shape[0]]
    r1, w1, r2, w2 = y.copy(), np.zeros(12), y.copy(), np.zeros(12)
    K.bcd_epoch_quadratic(X, r1, w1, *args)
    K.bcd_epoch_quadratic.py_func(X, r2, w2, *args)
    np.testing.assert_allclose(w1, w2, atol=1e-12)
    np.testing.assert_allclose(r1, r2, atol=1e-12)


@pytest.mark.parametrize("solver, datafit, penalty, missing", [
    (BlockCD(), Quadratic(), TreeGroupLasso(TREE, 0.1), "block_structure"),
    (ADMM(), Logistic(), OverlappingGroupLasso(OVERLAP, 0.1), "admm_solver"),
    (ADMM(), Quadratic(), GroupLasso(GROUPS, 0.1), "overlap_structure"),
    (FISTA(), Quadratic(), object(), "value, prox, subdiff_distance"),
    (BlockCD(), Quadratic(), FrobeniusNuclear(0.1), "block_structure"),
])
def test_solver_names_missing_capability(solver, datafit, penalty, missing):
    X, y = _quad_problem(0)
    with pytest.raises(TypeError, match=missing):
        solver.solve(X, y, datafit, penalty)


@pytest.mark.parametrize("solver", [FISTA(), BlockCD()])
def test_bad_data(solver):
    X, y = _quad_problem(0)
    pen = L1(0.1)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="X: contains NaN"):
        solver.solve(Xn, y, Quadratic(), pen)
    with pytest.raises(ValueError, match="y: has 39 rows"):
        solver.solve(X, y[:-1], Quadratic(), pen)
    with pytest.raises(ValueError, match="X: expected a 2-D"):
        solver.solve(X[0], y, Quadratic(), pen)
    with pytest.raises(ValueError, match="w0"):
        solver.solve(X, y, Quadratic(), pen, w0=np.zeros(3))
    with pytest.raises(ValueError, match="y: Logistic"):
        solver.solve(X, y, Logistic(), pen)


class _Underestimated(Quadratic):
    """Claims a Lipschitz constant 1000× too small: only backtracking can save FISTA."""

    def lipschitz(self, X):
        return super().lipschitz(X) / 1000


def test_fista_backtracking_recovers_from_bad_lipschitz():
    X, y = _quad_problem(0)
    pen = GroupLasso(GROUPS, 0.1)
    ref = BlockCD(tol=1e-10).solve(X, y, Quadratic(), pen)
    res = FISTA(tol=1e-9, max_iter=5000).solve(X, y, _Underestimated(), pen)
    assert res.converged and rel_gap(res.objective, ref.objective) < 1e-9
    with np.errstate(all="ignore"):  # without backtracking the iterates blow up
        bad = FISTA(tol=1e-9, max_iter=200, backtracking=False).solve(X, y, _Underestimated(),
                                                                      pen)
    assert not np.isfinite(bad.objective) or bad.objective > 10 * ref.objective


def test_fista_adaptive_restart_needs_fewer_iterations():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 12))  # well conditioned: momentum overshoots without restart
    y = X @ rng.standard_normal(12)
    pen = GroupLasso(GROUPS, 0.01)
    fast = FISTA(tol=1e-9, max_iter=20000, check_every=1).solve(X, y, Quadratic(), pen)
    slow = FISTA(tol=1e-9, max_iter=20000, check_every=1, restart=False).solve(
        X, y, Quadratic(), pen)
    assert fast.converged and fast.n_iter < slow.n_iter
