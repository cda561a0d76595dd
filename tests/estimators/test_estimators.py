import numpy as np
import pytest
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import Lasso, LassoCV
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sparsity.problems import GROUPS, OVERLAP, TREE, classification, regression, rel_gap
from sparsity.reference import solve_reference

from prunekit.estimators import (
    GroupLasso,
    GroupLassoCV,
    LogisticGroupLasso,
    OverlappingGroupLasso,
    SparseGroupLasso,
    TreeGroupLasso,
)
from prunekit.sparsity import GroupLasso as GroupLassoPenalty
from prunekit.sparsity import OverlappingGroupLasso as OverlapPenalty
from prunekit.sparsity import Quadratic, alpha_max
from prunekit.sparsity import TreeGroupLasso as TreePenalty


def _objective(X, y, est, groups, l1_ratio=0.0):
    """Our objective at the fitted (coef_, intercept_), computed from scratch."""
    r = y - X @ est.coef_ - est.intercept_
    pen = sum(np.linalg.norm(est.coef_[g]) for g in groups)
    return r @ r / (2 * len(y)) + est.alpha * ((1 - l1_ratio) * pen
                                               + l1_ratio * np.abs(est.coef_).sum())


REGRESSORS = {
    "group": (lambda: GroupLasso(GROUPS, alpha=0.1), GROUPS, {}),
    "sparse_group": (lambda: SparseGroupLasso(GROUPS, alpha=0.1, l1_ratio=0.3), GROUPS,
                     {"l1_ratio": 0.3}),
    "tree": (lambda: TreeGroupLasso(TREE, alpha=0.1, tol=1e-9, max_iter=20000), TREE, {}),
    "overlap": (lambda: OverlappingGroupLasso(OVERLAP, alpha=0.1, tol=1e-10), OVERLAP, {}),
}


@pytest.mark.parametrize("seed", range(3))
def test_latent_overlap_objective_matches_cvxpy(seed):
    X, y = regression(seed)
    est = OverlappingGroupLasso(OVERLAP, alpha=0.1, latent=True, tol=1e-10).fit(X, y)
    v, ptr = est.latent_coef_, np.cumsum([0] + [len(g) for g in OVERLAP])
    latent = sum(np.linalg.norm(v[a:b]) for a, b in zip(ptr[:-1], ptr[1:]))
    r = y - X @ est.coef_ - est.intercept_
    ours = r @ r / (2 * len(y)) + 0.1 * latent
    _, _, ref = solve_reference(X, y, "quadratic", 0.1, OVERLAP, fit_intercept=True,
                                latent=True)
    assert rel_gap(ours, ref) < 1e-6
    # the support is a union of selected groups
    support = set(np.flatnonzero(est.coef_).tolist())
    union = set().union(*[OVERLAP[g] for g in est.selected_groups_]) if len(
        est.selected_groups_) else set()
    assert support <= union


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", REGRESSORS)
def test_regressor_objective_matches_cvxpy(name, seed):
    make, groups, kw = REGRESSORS[name]
    X, y = regression(seed)
    est = make().fit(X, y)
    _, _, ref = solve_reference(X, y, "quadratic", 0.1, groups, fit_intercept=True, **kw)
    assert rel_gap(_objective(X, y, est, groups, kw.get("l1_ratio", 0.0)), ref) < 1e-6


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_objective_matches_cvxpy(seed, n_classes):
    X, y = classification(seed, n_classes=n_classes)
    est = LogisticGroupLasso(GROUPS, alpha=0.02).fit(X, y)
    scores = X @ est.coef_.T + est.intercept_
    pen = 0.02 * sum(np.linalg.norm(est.coef_[:, g]) for g in GROUPS)
    if n_classes == 2:
        s = 2.0 * y - 1
        ours = np.logaddexp(0, -s * scores.ravel()).mean() + pen
        _, _, ref = solve_reference(X, s, "logistic", 0.02, GROUPS, fit_intercept=True)
    else:
        Y = np.eye(n_classes)[y]
        top = scores.max(1)
        lse = top + np.log(np.exp(scores - top[:, None]).sum(1))
        ours = (lse - (Y * scores).sum(1)).mean() + pen
        _, _, ref = solve_reference(X, Y, "multinomial", 0.02, GROUPS, fit_intercept=True)
    assert rel_gap(ours, ref) < 1e-6
    assert est.coef_.shape == (1 if n_classes == 2 else n_classes, 12)
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert (est.predict(X) == est.classes_[proba.argmax(1)]).all()


@pytest.mark.parametrize("name, penalty", [
    ("group", GroupLassoPenalty(GROUPS, 1.0)),
    ("sparse_group", None),
    ("tree", TreePenalty(TREE, 1.0)),
    ("overlap", OverlapPenalty(OVERLAP, 1.0)),
])
def test_alpha_at_least_alpha_max_gives_zeros(name, penalty):
    X, y = regression(4)
    make, groups, kw = REGRESSORS[name]
    from prunekit.sparsity import SparseGroupLasso as SGLPenalty

    penalty = penalty or SGLPenalty(GROUPS, 1.0, 0.3)
    top = alpha_max(X - X.mean(0), y - y.mean(), Quadratic(), penalty)
    est = make().set_params(alpha=top * 1.01).fit(X, y)
    assert np.all(est.coef_ == 0) and len(est.selected_groups_) == 0
    assert est.intercept_ == pytest.approx(y.mean())
    est = make().set_params(alpha=top * 0.95).fit(X, y)
    assert np.any(est.coef_ != 0)


@pytest.mark.parametrize("seed", range(3))
def test_singleton_groups_reproduce_sklearn_lasso(seed):
    X, y = regression(seed, n=50, p=20)
    ours = GroupLasso(alpha=0.05, tol=1e-10).fit(X, y)
    ref = Lasso(alpha=0.05, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-6)


def test_cv_matches_sklearn_lasso_cv_with_singletons():
    X, y = regression(0, n=60, p=10)
    folds = KFold(4)
    ours = GroupLassoCV(n_alphas=8, cv=folds, tol=1e-10).fit(X, y)
    ref = LassoCV(alphas=ours.alphas_, cv=folds, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.mse_path_, ref.mse_path_, rtol=1e-5)
    assert ours.alpha_ == pytest.approx(ref.alpha_)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)


def test_selected_groups_and_attributes():
    X, y = regression(1)
    est = GroupLasso(GROUPS, alpha=0.3).fit(X, y)
    nonzero = [g for g, idx in enumerate(GROUPS) if np.any(est.coef_[idx] != 0)]
    assert est.selected_groups_.tolist() == nonzero
    assert est.n_iter_ >= 1 and est.stop_crit_ <= est.tol


def test_int_groups_are_contiguous_blocks():
    X, y = regression(2)
    a = GroupLasso(groups=3, alpha=0.2).fit(X, y)
    b = GroupLasso(groups=[[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]], alpha=0.2).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_)


def test_fit_never_rewrites_arguments():
    X, y = regression(3)
    groups = [list(g) for g in GROUPS]
    X0, y0 = X.copy(), y.copy()
    est = GroupLasso(groups, alpha=0.1, weights="sqrt").fit(X, y)
    assert groups == GROUPS and est.groups is groups and est.weights == "sqrt"
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_pipeline_gridsearch_selectfrommodel():
    X, y = regression(5, n=80)
    pipe = make_pipeline(StandardScaler(), GroupLasso(GROUPS))
    grid = GridSearchCV(pipe, {"grouplasso__alpha": [0.01, 0.1, 1.0]}, cv=3).fit(X, y)
    assert grid.best_params_["grouplasso__alpha"] in (0.01, 0.1, 1.0)
    sel = SelectFromModel(GroupLasso(GROUPS, alpha=0.3), threshold=1e-12).fit(X, y)
    kept = sel.get_support()
    assert kept.tolist() == (sel.estimator_.coef_ != 0).tolist()
    assert 0 < kept.sum() < X.shape[1]
    assert sel.transform(X).shape[1] == kept.sum()
    Xc, yc = classification(0, n_classes=3)
    assert SelectFromModel(LogisticGroupLasso(GROUPS, alpha=0.05)).fit(Xc, yc).transform(
        Xc).shape[0] == Xc.shape[0]


def test_warm_start_reuses_coef():
    X, y = regression(0)
    est = GroupLasso(GROUPS, alpha=0.05, warm_start=True).fit(X, y)
    first = est.n_iter_
    est.fit(X, y)
    assert est.n_iter_ <= first


@pytest.mark.parametrize("est, field", [
    (GroupLasso(alpha=-1.0), "alpha"),
    (GroupLasso(tol=0.0), "tol"),
    (GroupLasso(max_iter=0), "max_iter"),
    (GroupLasso(groups=[[0, 1], [1, 2]]), "overlapping"),
    (GroupLasso(groups=[[0, 99]]), "out of range"),
    (GroupLasso(groups=[[0], []]), "empty"),
    (SparseGroupLasso(l1_ratio=2.0), "l1_ratio"),
    (TreeGroupLasso(groups=[[0, 1], [1, 2]]), "tree-structured"),
    (GroupLassoCV(eps=2.0), "eps"),
    (LogisticGroupLasso(alpha=-0.1), "alpha"),
])
def test_bad_parameters_raise_value_error(est, field):
    X, y = regression(0)
    if isinstance(est, LogisticGroupLasso):
        y = y > y.mean()
    with pytest.raises(ValueError, match=field):
        est.fit(X, y)


def test_bad_data():
    X, y = regression(0)
    Xn = X.copy()
    Xn[3, 2] = np.inf
    with pytest.raises(ValueError, match="infinity|NaN"):
        GroupLasso().fit(Xn, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        GroupLasso().fit(X, y[:-2])
    with pytest.raises(ValueError, match="class"):
        LogisticGroupLasso().fit(X, np.zeros(len(y)))
