"""Wavelet basis, quadtree layout and PSNR for the compressive imaging demo."""

import numpy as np
import pytest

from prunekit.apps.image import HaarBasis, load_photo, psnr, recover_image, sensing_matrix
from prunekit.apps.operators import make_operator
from prunekit.apps.trees import is_tree_consistent


def test_haar_basis_is_orthonormal():
    b = HaarBasis(16, 3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(256)
    c = b.analysis(x)
    assert np.allclose(b.synthesis(c), x) and np.linalg.norm(c) == pytest.approx(
        np.linalg.norm(x))


def test_quadtree_children_live_inside_their_parent():
    """The pixel footprint of each coefficient's atom is inside its parent's."""
    b = HaarBasis(16, 3)
    parent = b.parent
    atoms = np.stack([b.synthesis(e) != 0 for e in np.eye(256)])
    scaling = b.scaling_mask()
    for i in np.flatnonzero(parent >= 0):
        p = parent[i]
        assert not np.any(atoms[i] & ~atoms[p]), i
        assert scaling[p] or atoms[p].sum() == 4 * atoms[i].sum()


def test_photo_and_recovery_smoke():
    img = load_photo(16, 1)
    assert img.shape == (16, 16) and 0 <= img.min() and img.max() <= 1
    b = HaarBasis(16, 2)
    a = make_operator("dct", 128, 256, rng=0).dense()
    y = a @ img.ravel()
    phi = sensing_matrix(a, b)
    assert np.allclose(phi @ b.analysis(img.ravel()), y)
    c = recover_image("cosamp-tree", phi, y, b, 0.25)
    assert is_tree_consistent(c != 0, b.parent)
    assert psnr(b.synthesis(c), img.ravel()) > 15
    assert psnr(img, img) == float("inf")
    with pytest.raises(ValueError, match="method"):
        recover_image("tv", phi, y, b, 0.1)
