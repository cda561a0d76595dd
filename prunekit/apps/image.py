"""Compressive imaging of a real photograph with wavelet-tree sparsity.

The image X (side × side) is measured as y = A vec(X) and recovered in an orthonormal
Haar wavelet basis, X = W c. The wavelet coefficients of natural images are
*compressible along a quadtree*: a large coefficient usually has a large parent.
Methods (all on the matrix Φ = A W):

- ``l1``: plain L1 on the detail coefficients (the scaling block is unpenalized);
- ``tree-lasso``: tree group lasso, one group per detail coefficient = its subtree;
- ``cosamp-tree`` / ``cosamp``: model-based CoSaMP with the exact tree projection of
  :mod:`prunekit.apps.models`, and plain CoSaMP.

``pywt`` and scikit-learn are imported only inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from prunekit.apps.greedy import cosamp
from prunekit.apps.models import SparseModel, TreeModel
from prunekit.apps.sensing import lasso_recover
from prunekit.apps.trees import quadtree_wavelet_tree, subtree_groups

Array = np.ndarray


def load_photo(side: int = 64, index: int = 0) -> Array:
    """A scikit-learn sample photograph (0: china, 1: flower) as a side×side gray image.

    Grayscale by luminance, centre square crop, block-average downsampling; values in
    [0, 1]. The images ship with scikit-learn (no download).
    """
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images
    if not 0 <= index < len(images):
        raise ValueError(f"index must be in [0, {len(images)}), got {index}")
    rgb = images[index].astype(float) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    h, w = gray.shape
    s = min(h, w)
    sq = gray[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    f = s // side
    if f < 1:
        raise ValueError(f"side must be <= {s}, got {side}")
    return sq[: f * side, : f * side].reshape(side, f, side, f).mean(axis=(1, 3))


@dataclass(frozen=True)
class HaarBasis:
    """Orthonormal 2-D Haar transform on side×side images (pywt, periodization).

    ``analysis(image vector) -> coefficient vector`` in the ``coeffs_to_array`` layout
    (row-major) and ``synthesis`` its inverse (= adjoint). ``parent`` is the quadtree.
    """

    side: int
    level: int

    @property
    def coarsest(self) -> int:
        return self.side >> self.level

    @property
    def parent(self) -> Array:
        return quadtree_wavelet_tree(self.side, self.coarsest)

    @property
    def n_scaling(self) -> int:
        return self.coarsest ** 2

    def analysis(self, img: Array) -> Array:
        import pywt

        coeffs = pywt.wavedec2(np.asarray(img).reshape(self.side, self.side), "haar",
                               mode="periodization", level=self.level)
        return pywt.coeffs_to_array(coeffs)[0].ravel()

    def synthesis(self, c: Array) -> Array:
        import pywt

        arr = np.asarray(c).reshape(self.side, self.side)
        slices = self._slices()
        coeffs = pywt.array_to_coeffs(arr, slices, output_format="wavedec2")
        return pywt.waverec2(coeffs, "haar", mode="periodization").ravel()

    def _slices(self) -> list:
        import pywt

        zero = np.zeros((self.side, self.side))
        coeffs = pywt.wavedec2(zero, "haar", mode="periodization", level=self.level)
        return pywt.coeffs_to_array(coeffs)[1]

    def scaling_mask(self) -> Array:
        """True for the approximation (scaling) coefficients."""
        mask = np.zeros((self.side, self.side), dtype=bool)
        mask[: self.coarsest, : self.coarsest] = True
        return mask.ravel()


def psnr(x: Array, ref: Array) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = float(np.mean((np.asarray(x) - np.asarray(ref)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def sensing_matrix(a: Array, basis: HaarBasis) -> Array:
    """Φ = A W as a dense matrix (row i = Wᵀ aᵢ, W orthonormal)."""
    return np.stack([basis.analysis(row) for row in np.asarray(a)])


def _l1_penalty(basis: HaarBasis) -> Callable[[float], object]:
    from prunekit.sparsity import GroupLasso

    detail = np.flatnonzero(~basis.scaling_mask())
    groups = [[int(i)] for i in detail]
    n = basis.side ** 2
    return lambda alpha: GroupLasso(groups, alpha, n_features=n)


def _tree_penalty(basis: HaarBasis, decay: float) -> Callable[[float], object]:
    """Subtree groups of the detail coefficients; weights ∝ |g|^decay (size-aware)."""
    from prunekit.sparsity import TreeGroupLasso

    parent = basis.parent.copy()
    scaling = basis.scaling_mask()
    parent[np.isin(parent, np.flatnonzero(scaling))] = -1   # detail trees are rooted alone
    parent[scaling] = -1
    groups = [g for i, g in enumerate(subtree_groups(parent)) if not scaling[i]]
    weights = np.array([len(g) ** decay for g in groups], dtype=float)
    n = basis.side ** 2
    return lambda alpha: TreeGroupLasso(groups, alpha, weights=weights, n_features=n)


def recover_image(method: str, phi: Array, y: Array, basis: HaarBasis, param: float
                  ) -> Array:
    """Wavelet coefficients recovered by ``method`` with its one tuning parameter.

    ``param`` is α/α_max for the lasso methods and the sparsity K (as a fraction of m)
    for the CoSaMP methods.
    """
    if method == "l1":
        return lasso_recover(phi, y, _l1_penalty(basis), ratios=(param,), refit=False)
    if method == "tree-lasso":
        return lasso_recover(phi, y, _tree_penalty(basis, 0.0), ratios=(param,), refit=False)
    k = max(1, int(param * len(y)))
    if method == "cosamp-tree":
        return cosamp(phi, y, TreeModel(basis.parent), k, max_iter=10, tol=1e-6).x
    if method == "cosamp":
        return cosamp(phi, y, SparseModel(), k, max_iter=10, tol=1e-6).x
    raise ValueError(f"method must be one of {IMAGE_METHODS}, got {method!r}")


IMAGE_METHODS = ("l1", "tree-lasso", "cosamp", "cosamp-tree")
