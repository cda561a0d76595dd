"""Hierarchical selection: tree group lasso supports are always rooted."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.preprocessing import StandardScaler

from prunekit.apps.hierarchy import (
    alpha_max,
    breast_cancer_hierarchy,
    digits_pyramid,
    selection_path,
)


@pytest.fixture(scope="module")
def cancer():
    d = load_breast_cancer()
    x = StandardScaler().fit_transform(d.data)
    return x, d.target, breast_cancer_hierarchy(list(d.feature_names))


def _path(method, x, y, h, alphas):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return selection_path(method, h, x[::2], y[::2], x[1::2], y[1::2], alphas)


def test_every_tree_support_is_tree_consistent_and_l1_is_not(cancer):
    x, y, h = cancer
    alphas = alpha_max(x, y) * np.geomspace(1.5, 0.01, 8)
    tree = _path("tree", x, y, h, alphas)
    assert all(r["consistent"] for r in tree)
    assert any(0 < r["n_features"] < 30 for r in tree)       # a real, partial selection
    assert max(r["accuracy"] for r in tree) > 0.9
    l1 = _path("l1", x, y, h, alphas)
    assert not all(r["consistent"] for r in l1)               # the check can fail


def test_breast_cancer_hierarchy_links_mean_to_error_and_worst(cancer):
    _, _, h = cancer
    i = h.names.index("mean radius")
    assert h.parent[h.names.index("radius error")] == i
    assert h.parent[h.names.index("worst radius")] == i
    assert h.parent[i] == -1 and len(h.flat_groups) == 10
    with pytest.raises(ValueError, match="pattern"):
        breast_cancer_hierarchy(["a", "b"])


def test_digits_pyramid_features_and_tree():
    images = load_digits().images[:5]
    x, h = digits_pyramid(images)
    assert x.shape == (5, 85)
    assert np.allclose(x[:, 0], images.mean(axis=(1, 2)))
    assert np.allclose(x[:, 1], images[:, :4, :4].mean(axis=(1, 2)))     # quadrant 0
    assert np.allclose(x[:, 5 + 5], images[:, 2:4, 2:4].mean(axis=(1, 2)))   # block (1, 1)
    px = 21 + 3 * 8 + 5                                                  # pixel (3, 5)
    assert h.parent[px] == 5 + 1 * 4 + 2 and h.parent[5 + 6] == 2 and h.parent[2] == 0
    assert sorted(i for g in h.flat_groups for i in g) == list(range(85))
    with pytest.raises(ValueError, match="shape"):
        digits_pyramid(np.zeros((2, 4, 4)))
