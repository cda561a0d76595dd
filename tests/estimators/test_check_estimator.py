from sklearn.utils.estimator_checks import parametrize_with_checks

from prunekit.estimators import (
    GroupLasso,
    LogisticGroupLasso,
    OverlappingGroupLasso,
    SparseGroupLasso,
    TreeGroupLasso,
)


@parametrize_with_checks([GroupLasso(), SparseGroupLasso(), TreeGroupLasso(),
                          OverlappingGroupLasso(), LogisticGroupLasso()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
