from sklearn.utils.estimator_checks import parametrize_with_checks

from prunekit.estimators import GroupLasso, OverlappingGroupLasso, SparseGroupLasso, TreeGroupLasso


@parametrize_with_checks([GroupLasso(), SparseGroupLasso(), TreeGroupLasso(),
                          OverlappingGroupLasso()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
