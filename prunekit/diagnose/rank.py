"""Effective rank of activations (Roy & Vetterli, 2007) and the 99 %-energy rank.

For singular values ``σ_1 ≥ … ≥ σ_k`` of the (by default centered) activation matrix
``A`` (rows: samples × positions, columns: channels),

``p_i = σ_i / Σ_j σ_j``,   ``H(p) = −Σ_i p_i log p_i``,   ``erank(A) = exp(H(p))``.

``1 ≤ erank ≤ rank(A)``: it equals ``n`` for isotropic data on ``n`` channels and drops
when a few directions carry the signal (redundant, collapsed features). The energy rank
is the smallest ``k`` with ``Σ_{i≤k} σ_i² ≥ energy·Σ_i σ_i²``. Singular values are the
square roots of the eigenvalues of ``AᵀA`` (accumulated in float64, see
:mod:`.moments`); values below ``1e-5·σ_1`` are float32 noise and treated as zero.
"""

from __future__ import annotations

import torch

from prunekit.diagnose.moments import ChannelMoments

_REL_TOL = 1e-5  # σ_i ≤ this × σ_1 is zero (float32 activations carry ~1e-7 relative noise)


def singular_values(moments: ChannelMoments, center: bool = True) -> torch.Tensor:
    """Singular values of the (centered) matrix, descending, from its Gram matrix."""
    eig = torch.linalg.eigvalsh(moments.second_moment(center)).flip(0).clamp_min(0)
    sigma = eig.sqrt()
    if sigma.numel() and float(sigma[0]) > 0:
        sigma = torch.where(sigma > _REL_TOL * sigma[0], sigma, torch.zeros_like(sigma))
    return sigma


def erank_from_singular_values(sigma: torch.Tensor) -> float:
    """``exp(−Σ p_i log p_i)`` with ``p = σ / Σσ``; 0 for an all-zero matrix."""
    sigma = sigma.to(torch.float64).clamp_min(0)
    total = float(sigma.sum())
    if total <= 0:
        return 0.0
    p = sigma[sigma > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def energy_rank(sigma: torch.Tensor, energy: float = 0.99) -> int:
    """Smallest ``k`` with ``Σ_{i≤k} σ_i² ≥ energy·Σ σ_i²`` (σ descending); 0 if all zero."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy!r}")
    power = sigma.to(torch.float64).pow(2)
    total = float(power.sum())
    if total <= 0:
        return 0
    cum = power.cumsum(0) / total
    return int((cum < energy - 1e-12).sum()) + 1


def effective_rank(a: torch.Tensor, center: bool = True) -> float:
    """Effective rank of a matrix ``a`` (rows × channels)."""
    return erank_from_singular_values(singular_values(ChannelMoments.from_matrix(a), center))
