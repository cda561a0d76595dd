"""Streaming Gram matrices of a layer's inputs, damped (ridge) solves, and errors from them.

For rows ``x̃ = [x, 1]`` (the 1 when the layer has a bias) and targets ``y``, batches add
``G = Σ x̃ x̃ᵀ``, ``C = Σ y x̃ᵀ`` and ``S = Σ ‖y‖²`` — memory is one layer's Gram, whatever
the number of samples. Everything a caller needs follows from these sums:

* the ridge solution ``W̃ = C (G + λ D)⁻¹`` (``D`` is the identity on the weight columns and
  0 on the bias column: the intercept is never shrunk), ``λ = damping · mean(diag G_w)``;
* the squared error of any ``W̃``: ``Σ ‖W̃ x̃ − y‖² = tr(W̃ G W̃ᵀ) − 2 tr(W̃ Cᵀ) + S``.

All sums are float64 on the device of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Gram:
    """``G``, ``C``, ``S`` and the row count ``n`` of one (group of a) layer."""

    xx: torch.Tensor
    yx: torch.Tensor | None
    yy: torch.Tensor | None
    n: int
    intercept: bool

    @classmethod
    def empty(cls, k: int, out: int | None, intercept: bool,
              device: torch.device | str = "cpu") -> Gram:
        """Zero sums for ``k`` input columns and ``out`` targets (None: inputs only)."""
        kk = k + int(intercept)
        z = torch.zeros
        return cls(z(kk, kk, dtype=torch.float64, device=device),
                   None if out is None else z(out, kk, dtype=torch.float64, device=device),
                   None if out is None else z(out, dtype=torch.float64, device=device),
                   0, intercept)

    def add(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """Add rows ``x`` ``(n, k)`` and, if this Gram has targets, ``y`` ``(n, out)``."""
        x = self._augment(x.detach().to(self.xx.device, torch.float64))
        self.xx.addmm_(x.t(), x)
        self.n += x.shape[0]
        if self.yx is not None:
            if y is None or y.shape[0] != x.shape[0]:
                raise ValueError("Gram.add: targets must have one row per input row")
            y = y.detach().to(self.xx.device, torch.float64)
            self.yx.addmm_(y.t(), x)
            self.yy += y.pow(2).sum(0)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if not self.intercept:
            return x
        return torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1)

    @property
    def k(self) -> int:
        """Number of weight columns (without the intercept)."""
        return self.xx.shape[0] - int(self.intercept)

    def damped(self, damping: float) -> torch.Tensor:
        """``G + λ D`` with ``λ = damping · mean(diag of the weight block)``."""
        g = self.xx.clone()
        k = self.k
        if damping > 0 and k:
            diag = torch.diagonal(g)[:k]
            lam = damping * float(diag.mean())
            lam = lam if lam > 0 else damping
            diag += lam
        return g


def ridge_solve(gram: Gram, damping: float) -> torch.Tensor:
    """``W̃ = C (G + λ D)⁻¹`` (rows: outputs; last column: the intercept, if any).

    A singular system (``damping=0`` with dead inputs) falls back to the pseudo-inverse,
    the minimum-norm least-squares solution.
    """
    if gram.yx is None:
        raise ValueError("ridge_solve: this Gram has no targets")
    a = gram.damped(damping)
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_solve(gram.yx.t(), chol).t()
    return (torch.linalg.pinv(a, hermitian=True) @ gram.yx.t()).t()


def squared_error(gram: Gram, w: torch.Tensor) -> torch.Tensor:
    """``Σ_rows (W̃ x̃ − y)²`` per output, from the sums (``w``: ``(out, k [+1])``)."""
    if gram.yx is None or gram.yy is None:
        raise ValueError("squared_error: this Gram has no targets")
    w = w.to(gram.xx.device, torch.float64)
    quad = ((w @ gram.xx) * w).sum(1)
    cross = (w * gram.yx).sum(1)
    return (quad - 2 * cross + gram.yy).clamp_min(0.0)


def inverse(gram: Gram, damping: float) -> torch.Tensor:
    """``(G + λ D)⁻¹`` (symmetric), the inverse Hessian of the layer's squared error."""
    a = gram.damped(damping)
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_inverse(chol)
    return torch.linalg.pinv(a, hermitian=True)
