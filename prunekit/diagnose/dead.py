"""Dead channels: activations that stay (near) zero on every calibration sample.

Channel ``c`` is *dead* when ``max |a_c| ≤ tol`` over all samples and positions (a
filter zeroed by the group lasso, or a channel after a ReLU that never fires). It is
*never positive* when ``max a_c ≤ tol``: a pre-activation that a following ReLU would
turn into a dead channel.
"""

from __future__ import annotations

import torch

from prunekit.diagnose.moments import ChannelMoments


def dead_mask(moments: ChannelMoments, tol: float = 1e-6) -> torch.Tensor:
    """Boolean mask of dead channels: ``max |a_c| ≤ tol``."""
    _check_tol(tol)
    return moments.max_abs <= tol


def never_positive_mask(moments: ChannelMoments, tol: float = 1e-6) -> torch.Tensor:
    """Boolean mask of channels with ``max a_c ≤ tol`` (dead after a ReLU)."""
    _check_tol(tol)
    return moments.max <= tol


def dead_fraction(activations: torch.Tensor, dim: int = 1, tol: float = 1e-6) -> float:
    """Fraction of dead channels of an activation tensor, channels along ``dim``."""
    a = activations.detach().movedim(dim, -1)
    mask = dead_mask(ChannelMoments.from_matrix(a.reshape(-1, a.shape[-1])), tol)
    return float(mask.double().mean()) if mask.numel() else 0.0


def _check_tol(tol: float) -> None:
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
