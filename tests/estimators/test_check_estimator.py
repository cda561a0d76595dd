from sklearn.utils.estimator_checks import parametrize_with_checks

from prunekit.estimators import (
    GroupLasso,
    GroupLassoCV,
    LogisticGroupLasso,
    OverlappingGroupLasso,
    SparseGroupLasso,
    TreeGroupLasso,
)


@parametrize_with_checks([GroupLasso(), SparseGroupLasso(), TreeGroupLasso(),
                          OverlappingGroupLasso(), OverlappingGroupLasso(latent=True),
                          LogisticGroupLasso(),
                          GroupLassoCV(n_alphas=5, cv=3)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
