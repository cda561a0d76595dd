"""scikit-learn estimators on the group-sparse core :mod:`prunekit.sparsity`."""

from .linear import GroupLasso, OverlappingGroupLasso, SparseGroupLasso, TreeGroupLasso

__all__ = ["GroupLasso", "SparseGroupLasso", "TreeGroupLasso", "OverlappingGroupLasso"]
