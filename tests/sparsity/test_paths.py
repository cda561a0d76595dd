import numpy as np
import pytest

from prunekit.sparsity import (
    FISTA,
    L1,
    BlockCD,
    GroupLasso,
    Logistic,
    OverlappingGroupLasso,
    Quadratic,
    SparseGroupLasso,
    TreeGroupLasso,
    alpha_max,
    budget_search,
    default_solver,
    regularization_path,
)

from .problems import GROUPS, OVERLAP, TREE, regression


def _problem(seed=0):
    X, y = regression(seed)
    return X, y - y.mean()


PENALTIES = {
    "l1": lambda: L1(1.0),
    "group": lambda: GroupLasso(GROUPS, 1.0, weights="sqrt"),
    "sparse_group": lambda: SparseGroupLasso(GROUPS, 1.0, 0.3),
    "tree": lambda: TreeGroupLasso(TREE, 1.0),
    "overlap": lambda: OverlappingGroupLasso(OVERLAP, 1.0),
}


@pytest.mark.parametrize("name", PENALTIES)
def test_alpha_max_is_the_zero_threshold(name):
    X, y = _problem()
    pen = PENALTIES[name]()
    top = alpha_max(X, y, Quadratic(), pen)
    solver = default_solver(X, y, Quadratic(), pen, tol=1e-10)
    at = solver.solve(X, y, Quadratic(), pen.with_alpha(top * 1.01)).coef
    below = solver.solve(X, y, Quadratic(), pen.with_alpha(top * 0.99)).coef
    assert np.all(at == 0)
    assert np.any(below != 0)


def test_alpha_max_logistic_with_free_intercept():
    X, y = regression(1)
    y = np.sign(y - np.median(y) + 0.3)
    Xa = np.hstack([X, np.ones((len(y), 1))])
    pos = (y > 0).mean()
    w0 = np.zeros(13)
    w0[-1] = np.log(pos / (1 - pos))  # optimal intercept when all coefficients are zero
    pen = GroupLasso(GROUPS, 1.0, n_features=12)
    top = alpha_max(Xa, y, Logistic(), pen, w0=w0)
    res = BlockCD(tol=1e-10).solve(Xa, y, Logistic(), pen.with_alpha(top * 1.0001))
    assert np.all(res.coef[:12] == 0)
    res = BlockCD(tol=1e-10).solve(Xa, y, Logistic(), pen.with_alpha(top * 0.99))
    assert np.any(res.coef[:12] != 0)


def test_path_is_warm_started_and_matches_cold_solves():
    X, y = _problem()
    pen = GroupLasso(GROUPS, 1.0)
    path = regularization_path(X, y, Quadratic(), pen, n_alphas=8, eps=1e-2,
                               solver=BlockCD(tol=1e-10))
    assert path.alphas[0] == pytest.approx(alpha_max(X, y, Quadratic(), pen))
    assert np.all(np.diff(path.alphas) < 0)
    assert path.n_nonzero_groups[0] == 0 and path.n_nonzero_groups[-1] > 0
    cold = BlockCD(tol=1e-10).solve(X, y, Quadratic(), pen.with_alpha(path.alphas[4]))
    np.testing.assert_allclose(path.coefs[4], cold.coef, atol=1e-7)


def test_path_with_fista_on_tree():
    X, y = _problem()
    path = regularization_path(X, y, Quadratic(), TreeGroupLasso(TREE, 1.0), n_alphas=4,
                               solver=FISTA(tol=1e-7, max_iter=5000))
    assert len(path.coefs) == 4 and path.n_nonzero_groups[0] == 0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_budget_on_group_count(k):
    X, y = _problem(2)
    pen = GroupLasso(GROUPS, 1.0)
    out = budget_search(X, y, Quadratic(), pen, max_groups=k)
    assert out.cost <= k
    solver = BlockCD(tol=1e-10)
    smaller = solver.solve(X, y, Quadratic(), pen.with_alpha(0.99 * out.alpha)).coef
    assert pen.group_support(smaller).sum() > k
    again = solver.solve(X, y, Quadratic(), pen.with_alpha(out.alpha)).coef
    assert pen.group_support(again).sum() <= k


def test_budget_on_costs():
    X, y = _problem(1)
    pen = GroupLasso(GROUPS, 1.0)
    costs = np.array([len(g) for g in GROUPS], dtype=float)  # cost = features kept
    out = budget_search(X, y, Quadratic(), pen, costs=costs, budget=6.0)
    assert out.cost <= 6.0
    solver = BlockCD(tol=1e-10)
    smaller = solver.solve(X, y, Quadratic(), pen.with_alpha(0.99 * out.alpha)).coef
    assert costs @ pen.group_support(smaller) > 6.0


@pytest.mark.parametrize("kwargs, field", [
    ({}, "budget"),
    ({"max_groups": 2, "budget": 3.0, "costs": [1.0] * 5}, "budget"),
    ({"max_groups": -1}, "max_groups"),
    ({"costs": [1.0, -1.0, 1.0, 1.0, 1.0], "budget": 2.0}, "costs"),
    ({"costs": [1.0, 1.0], "budget": 2.0}, "costs"),
])
def test_budget_bad_arguments(kwargs, field):
    X, y = _problem()
    with pytest.raises(ValueError, match=field):
        budget_search(X, y, Quadratic(), GroupLasso(GROUPS, 1.0), **kwargs)


def test_path_rejects_negative_alphas():
    X, y = _problem()
    with pytest.raises(ValueError, match="alphas"):
        regularization_path(X, y, Quadratic(), L1(1.0), alphas=[1.0, -1.0])
