"""Channel similarity: cosine and Pearson correlation, and their redundancy summaries.

For channel vectors ``a_i`` (columns of ``A``; a flattened filter or a channel's
activations over the calibration data):

``cos_ij = ⟨a_i, a_j⟩ / (‖a_i‖·‖a_j‖)``,   ``corr_ij = cov_ij / sqrt(cov_ii·cov_jj)``,

both read off the Gram matrix (see :mod:`.moments`). A channel with zero norm (for
cosine) or zero variance (for correlation) has no direction: its row is NaN and it is
left out of the summaries (it is counted as dead instead).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from prunekit.diagnose.moments import ChannelMoments

_REL_EPS = 1e-12  # a diagonal entry ≤ this × the largest one counts as zero


def normalize_gram(gram: torch.Tensor) -> torch.Tensor:
    """``S_ij = G_ij / sqrt(G_ii·G_jj)``; rows/columns of (near-)zero diagonal are NaN."""
    diag = gram.diagonal().clamp_min(0)
    scale = float(diag.max()) if diag.numel() else 0.0
    valid = diag > _REL_EPS * scale if scale > 0 else torch.zeros_like(diag, dtype=torch.bool)
    inv = torch.where(valid, diag.rsqrt(), torch.full_like(diag, torch.nan))
    sim = (gram * inv[:, None] * inv[None, :]).clamp(-1.0, 1.0)
    return sim


def cosine_matrix(moments: ChannelMoments) -> torch.Tensor:
    """Cosine similarity between channels (columns)."""
    return normalize_gram(moments.gram)


def correlation_matrix(moments: ChannelMoments) -> torch.Tensor:
    """Pearson correlation between channels (columns)."""
    return normalize_gram(moments.covariance())


def cosine_similarity(vectors: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between the *rows* of ``vectors`` (e.g. flattened filters)."""
    return cosine_matrix(ChannelMoments.from_matrix(_rows(vectors).T))


def correlation(vectors: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between the *rows* of ``vectors``."""
    return correlation_matrix(ChannelMoments.from_matrix(_rows(vectors).T))


def _rows(vectors: torch.Tensor) -> torch.Tensor:
    if not isinstance(vectors, torch.Tensor) or vectors.dim() < 1:
        raise ValueError("vectors must be a tensor with one row per channel")
    return vectors.reshape(vectors.shape[0], -1)


@dataclass
class SimilaritySummary:
    """How redundant a layer's channels are, from one similarity matrix ``S``.

    Over the pairs ``i < j`` of valid channels (non-NaN rows):

    * ``mean_abs`` = mean ``|S_ij|`` (0: orthogonal/uncorrelated; 1: all parallel);
    * ``frac_above`` = fraction of pairs with ``|S_ij| > threshold``;
    * ``duplicates`` = number of channels ``j`` with an earlier channel ``i < j`` and
      ``S_ij ≥ threshold`` — near-copies that a pruner could drop while a twin survives;
    * ``valid`` = channels with a defined direction, ``pairs`` = ``valid·(valid−1)/2``.

    Undefined values (fewer than two valid channels) are None.
    """

    mean_abs: float | None
    frac_above: float | None
    duplicates: int
    valid: int
    pairs: int
    threshold: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SimilaritySummary:
        return cls(**data)


def summarize(sim: torch.Tensor, threshold: float = 0.9) -> SimilaritySummary:
    """:class:`SimilaritySummary` of a square similarity matrix (NaN rows are skipped)."""
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square matrix, got shape {tuple(sim.shape)}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    valid = ~torch.isnan(sim.diagonal())
    s = sim[valid][:, valid]
    k = int(s.shape[0])
    if k < 2:
        return SimilaritySummary(None, None, 0, k, 0, threshold)
    iu = torch.triu_indices(k, k, offset=1)
    pairs = s[iu[0], iu[1]]
    upper = torch.triu(s >= threshold, diagonal=1)  # upper[i, j]: i < j and S_ij ≥ t
    return SimilaritySummary(
        mean_abs=_finite(pairs.abs().mean()),
        frac_above=_finite((pairs.abs() > threshold).double().mean()),
        duplicates=int(upper.any(0).sum()),
        valid=k, pairs=int(pairs.numel()), threshold=threshold,
    )


def _finite(x: torch.Tensor) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None
