"""Streaming second moments of channels: the one statistic every diagnostic reads.

A layer's channels are the columns of a matrix ``A`` (rows: calibration samples and
positions for activations; weight positions for filters). Similarity, correlation and
effective rank only need

``n`` (rows), ``s = Aᵀ1`` (column sums), ``G = AᵀA`` (the Gram matrix),

plus the per-column ``max |a|`` and ``max a`` for dead channels. They are accumulated
batch by batch in float64, so the full activation matrix is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ChannelMoments:
    """``n``, column sums ``s``, Gram ``G = AᵀA``, ``max |a|`` and ``max a`` per channel."""

    n: int
    sums: torch.Tensor
    gram: torch.Tensor
    max_abs: torch.Tensor
    max: torch.Tensor

    @classmethod
    def empty(cls, channels: int) -> ChannelMoments:
        """Moments of a matrix with no rows yet."""
        z = torch.zeros(channels, dtype=torch.float64)
        return cls(0, z.clone(), torch.zeros(channels, channels, dtype=torch.float64),
                   z.clone(), torch.full((channels,), -torch.inf, dtype=torch.float64))

    @classmethod
    def from_matrix(cls, a: torch.Tensor) -> ChannelMoments:
        """Moments of ``a`` (rows × channels)."""
        if a.dim() != 2:
            raise ValueError(f"a must be a 2-D (rows × channels) matrix, got shape "
                             f"{tuple(a.shape)}")
        out = cls.empty(a.shape[1])
        out.update(a)
        return out

    @property
    def channels(self) -> int:
        return int(self.sums.shape[0])

    def update(self, a: torch.Tensor) -> None:
        """Add the rows of ``a`` (rows × channels)."""
        if a.dim() != 2 or a.shape[1] != self.channels:
            raise ValueError(f"expected a (rows × {self.channels}) matrix, got {tuple(a.shape)}")
        if a.shape[0] == 0:
            return
        a = a.detach().to("cpu", torch.float64)
        self.n += int(a.shape[0])
        self.sums += a.sum(0)
        self.gram += a.T @ a
        self.max_abs = torch.maximum(self.max_abs, a.abs().amax(0))
        self.max = torch.maximum(self.max, a.amax(0))

    def mean(self) -> torch.Tensor:
        """Column means ``μ = s / n``."""
        return self.sums / max(self.n, 1)

    def covariance(self) -> torch.Tensor:
        """Scatter matrix of the centered columns, ``G − n·μμᵀ`` (symmetrized)."""
        mu = self.mean()
        cov = self.gram - self.n * torch.outer(mu, mu)
        return (cov + cov.T) / 2

    def second_moment(self, center: bool) -> torch.Tensor:
        """``covariance()`` if ``center`` else the Gram matrix."""
        return self.covariance() if center else self.gram
