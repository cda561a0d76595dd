"""Hierarchical feature selection with the tree group lasso.

Features live on the nodes of a tree; the penalty Σ_v w_v ‖β_{subtree(v)}‖₂ (one group
per node: the node and its descendants) can only zero whole subtrees, so a feature is
selected only together with all its ancestors — coarse-to-fine selection.

Two real hierarchies from scikit-learn data:

- :func:`breast_cancer_hierarchy`: 10 measurements × {mean, standard error, worst}; the
  mean of a measurement is the parent of its error and its worst value.
- :func:`digits_pyramid`: 8×8 digits as a quadtree pyramid — the image mean, 4
  quadrant means, 16 2×2-block means and the 64 pixels (85 features); a pixel is the
  child of its block, a block of its quadrant, a quadrant of the whole image.

:func:`selection_path` sweeps α for the tree group lasso, a flat group lasso and the
plain lasso (all :mod:`prunekit.estimators`), reporting features used vs accuracy.
Classification is least squares on ±1 targets (one-vs-rest for several classes; the
selected features are the union over classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prunekit.apps.trees import check_parent, is_tree_consistent, subtree_groups

Array = np.ndarray
METHODS = ("tree", "group", "l1")


@dataclass(frozen=True)
class FeatureHierarchy:
    """Feature names, the parent of each feature (-1: root) and a flat partition."""

    names: tuple[str, ...]
    parent: Array
    flat_groups: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        check_parent(self.parent)
        if len(self.names) != len(self.parent):
            raise ValueError("names and parent must have the same length")

    def tree_groups(self) -> list[list[int]]:
        """One group per feature: the feature and all its descendants."""
        return subtree_groups(self.parent)

    def is_consistent(self, support: Array) -> bool:
        """Every selected feature's ancestors are selected."""
        return is_tree_consistent(support, self.parent)


def breast_cancer_hierarchy(feature_names: list[str]) -> FeatureHierarchy:
    """mean X → {X error, worst X} for the 10 measurements of the breast-cancer data."""
    names = [str(n) for n in feature_names]
    index = {n: i for i, n in enumerate(names)}
    parent = -np.ones(len(names), dtype=int)
    groups = []
    for name in names:
        if name.startswith("mean "):
            base = name[len("mean "):]
            kids = [index[f"{base} error"], index[f"worst {base}"]]
            parent[kids] = index[name]
            groups.append((index[name], *kids))
    if np.count_nonzero(parent >= 0) != 2 * len(groups) or not groups:
        raise ValueError("feature_names do not follow the 'mean X' / 'X error' / 'worst X' "
                         "pattern of load_breast_cancer")
    return FeatureHierarchy(tuple(names), parent, tuple(groups))


def digits_pyramid(images: Array) -> tuple[Array, FeatureHierarchy]:
    """Quadtree pyramid features of 8×8 images: (X of shape (n, 85), hierarchy).

    Layout: [image mean, 4 quadrant means, 16 block means, 64 pixels]. Flat groups:
    each 2×2 block's mean with its 4 pixels, each quadrant mean alone, the image mean.
    """
    images = np.asarray(images, dtype=float)
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise ValueError(f"images must have shape (n, 8, 8), got {images.shape}")
    n = len(images)
    quads = images.reshape(n, 2, 4, 2, 4).mean(axis=(2, 4)).reshape(n, 4)
    blocks = images.reshape(n, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(n, 16)
    x = np.hstack([images.mean(axis=(1, 2))[:, None], quads, blocks, images.reshape(n, 64)])
    r4, c4 = np.divmod(np.arange(16), 4)
    r8, c8 = np.divmod(np.arange(64), 8)
    parent = np.concatenate([[-1], np.zeros(4, int), 1 + (r4 // 2) * 2 + c4 // 2,
                             5 + (r8 // 2) * 4 + c8 // 2])
    names = (["image"] + [f"quad{q}" for q in range(4)] + [f"block{b}" for b in range(16)]
             + [f"px{r},{c}" for r, c in zip(r8, c8)])
    flat = [(0,)] + [(q,) for q in range(1, 5)] + [
        (5 + b, *np.flatnonzero(parent == 5 + b).tolist()) for b in range(16)]
    return x, FeatureHierarchy(tuple(names), parent, tuple(flat))


def make_estimator(method: str, hierarchy: FeatureHierarchy, alpha: float):
    """The :mod:`prunekit.estimators` model of a method at level ``alpha``."""
    from prunekit.estimators import GroupLasso, TreeGroupLasso

    if method == "tree":
        return TreeGroupLasso(hierarchy.tree_groups(), alpha, tol=1e-5, max_iter=3000,
                              warm_start=True)
    if method == "group":
        return GroupLasso([list(g) for g in hierarchy.flat_groups], alpha, weights="sqrt",
                          tol=1e-6, warm_start=True)
    if method == "l1":
        return GroupLasso(None, alpha, tol=1e-6, warm_start=True)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _targets(y: Array) -> tuple[Array, Array]:
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError("y must contain at least two classes")
    if len(classes) == 2:
        return classes, (2.0 * (y == classes[1]) - 1.0)[:, None]
    return classes, 2.0 * (y[:, None] == classes[None, :]) - 1.0


def alpha_max(x: Array, y: Array) -> float:
    """Largest |xⱼᵀ t|/n over features and ±1 targets: above it (×√|g| for groups) all
    coefficients vanish; used to place the α grid."""
    _, t = _targets(np.asarray(y))
    xc, tc = x - x.mean(0), t - t.mean(0)
    return float(np.abs(xc.T @ tc).max() / len(x))


def selection_path(method: str, hierarchy: FeatureHierarchy, x_train: Array, y_train: Array,
                   x_test: Array, y_test: Array, alphas: Array) -> list[dict]:
    """For each α (decreasing, warm started): features used, test accuracy, support."""
    classes, t = _targets(np.asarray(y_train))
    models = [make_estimator(method, hierarchy, float(alphas[0])) for _ in range(t.shape[1])]
    rows = []
    for alpha in alphas:
        scores, support = [], np.zeros(x_train.shape[1], dtype=bool)
        for j, model in enumerate(models):
            model.set_params(alpha=float(alpha)).fit(x_train, t[:, j])
            support |= model.coef_ != 0
            scores.append(model.predict(x_test))
        s = np.column_stack(scores)
        pred = classes[(s[:, 0] > 0).astype(int)] if len(classes) == 2 else classes[s.argmax(1)]
        rows.append({"alpha": float(alpha), "n_features": int(support.sum()),
                     "accuracy": float(np.mean(pred == np.asarray(y_test))),
                     "consistent": hierarchy.is_consistent(support),
                     "support": np.flatnonzero(support).tolist()})
    return rows
