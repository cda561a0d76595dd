"""Latent overlapping group lasso (Jacob, Obozinski & Vert 2009) by duplicating variables.

``Ω(w) = min { Σ_g w_g‖v_g‖₂ : Σ_g v_g = w, supp(v_g) ⊂ g }``: the support of the
solution is a *union* of groups. Duplicating every column once per group that holds it
turns the problem into a plain (disjoint) Group Lasso on the latent ``v``, solved by any
group-separable solver; ``w`` is the sum of the copies (the consensus).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .groups import Groups

__all__ = ["latent_design", "latent_collapse"]


def latent_design(X: Any, groups: Groups) -> tuple[Any, Groups]:
    """``(X[:, indices], disjoint groups over the duplicated columns)``."""
    dup = Groups(np.arange(len(groups.indices), dtype=np.int64), groups.ptr.copy(),
                 groups.weights.copy(), len(groups.indices))
    return X[:, groups.indices], dup


def latent_collapse(v: np.ndarray, groups: Groups) -> np.ndarray:
    """``w = Σ_g v_g`` mapped back onto the original features."""
    return np.bincount(groups.indices, weights=v, minlength=groups.n_features)
