"""scikit-learn estimators on the group-sparse core :mod:`prunekit.sparsity`."""

from .cv import GroupLassoCV
from .linear import GroupLasso, OverlappingGroupLasso, SparseGroupLasso, TreeGroupLasso
from .logistic import LogisticGroupLasso

__all__ = ["GroupLasso", "LogisticGroupLasso", "SparseGroupLasso", "TreeGroupLasso",
           "OverlappingGroupLasso", "GroupLassoCV"]
