"""Measurement operators for compressive sensing: y = A x.

Each operator is a :class:`MeasurementOperator` with ``matvec`` (x -> A x), ``rmatvec``
(r -> Aᵀ r, the adjoint) and ``dense()``. The fast ones never form A:

- Gaussian: A_ij ~ N(0, 1/m), stored densely (the textbook ensemble).
- Partial DCT: A = √(n/m) · S · DCT · D, rows S drawn at random from the orthonormal
  DCT-II, D a random ±1 diagonal (which makes the ensemble incoherent with wavelets,
  "scrambled DCT"). Cost O(n log n) per product.
- Partial Fourier: the real form of S · F · D: each drawn frequency contributes its
  real and imaginary part as two rows (of the orthonormal real DFT basis).

All are scaled so that E‖A x‖² = ‖x‖² (columns of unit expected norm).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

Array = np.ndarray


@dataclass(frozen=True)
class MeasurementOperator:
    """A linear map R^n -> R^m given by its products with x and with the adjoint.

    Parameters
    ----------
    shape : (m, n)
    matvec : x (n,) -> A x (m,)
    rmatvec : r (m,) -> Aᵀ r (n,)
    name : label used in reports.
    """

    shape: tuple[int, int]
    matvec: Callable[[Array], Array]
    rmatvec: Callable[[Array], Array]
    name: str = "operator"

    def dense(self) -> Array:
        """Materialize A (m × n) column by column; O(n) products, for small n."""
        n = self.shape[1]
        return np.stack([self.matvec(e) for e in np.eye(n)], axis=1)

    def columns(self, idx: Array) -> Array:
        """The sub-matrix A[:, idx] built from |idx| products."""
        n = self.shape[1]
        out = np.empty((self.shape[0], len(idx)))
        for j, i in enumerate(np.asarray(idx, dtype=int)):
            e = np.zeros(n)
            e[i] = 1.0
            out[:, j] = self.matvec(e)
        return out

    def compose(self, synthesis: Callable[[Array], Array], analysis: Callable[[Array], Array],
                name: str | None = None) -> MeasurementOperator:
        """The operator A·W for a synthesis map W (e.g. inverse wavelet), adjoint Wᵀ·Aᵀ.

        ``analysis`` must be the adjoint of ``synthesis`` (equal to its inverse for an
        orthonormal wavelet), so that the result is again an exact (A, Aᵀ) pair.
        """
        return MeasurementOperator(
            shape=self.shape,
            matvec=lambda c: self.matvec(synthesis(c)),
            rmatvec=lambda r: analysis(self.rmatvec(r)),
            name=name or f"{self.name}∘W",
        )


def _check_mn(m: int, n: int, max_m: int | None = None) -> None:
    if not (isinstance(m, int | np.integer) and m >= 1):
        raise ValueError(f"m must be a positive integer, got {m!r}")
    if not (isinstance(n, int | np.integer) and n >= 1):
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if m > (max_m if max_m is not None else n):
        raise ValueError(f"m={m} exceeds the number of available rows {max_m or n}")


def gaussian_operator(m: int, n: int, rng: np.random.Generator | int | None = None
                      ) -> MeasurementOperator:
    """Dense i.i.d. Gaussian A with entries N(0, 1/m)."""
    _check_mn(m, n, max_m=10**9)
    rng = np.random.default_rng(rng)
    a = rng.standard_normal((m, n)) / np.sqrt(m)
    return MeasurementOperator((m, n), a.__matmul__, a.T.__matmul__, name="gaussian")


def dense_operator(a: Array, name: str = "dense") -> MeasurementOperator:
    """Wrap an explicit matrix as a :class:`MeasurementOperator`."""
    a = np.asarray(a, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"a must be a 2-D matrix, got shape {a.shape}")
    return MeasurementOperator(a.shape, a.__matmul__, a.T.__matmul__, name=name)


def partial_dct_operator(m: int, n: int, rng: np.random.Generator | int | None = None
                         ) -> MeasurementOperator:
    """Scrambled partial DCT: A x = √(n/m) · (DCT(D x))[rows]."""
    _check_mn(m, n)
    rng = np.random.default_rng(rng)
    rows = np.sort(rng.choice(n, size=m, replace=False))
    signs = rng.choice([-1.0, 1.0], size=n)
    scale = np.sqrt(n / m)

    def matvec(x: Array) -> Array:
        return scale * sfft.dct(signs * x, norm="ortho")[rows]

    def rmatvec(r: Array) -> Array:
        full = np.zeros(n)
        full[rows] = r
        return scale * signs * sfft.idct(full, norm="ortho")

    return MeasurementOperator((m, n), matvec, rmatvec, name="partial-dct")


def partial_fourier_operator(m: int, n: int, rng: np.random.Generator | int | None = None
                             ) -> MeasurementOperator:
    """Real form of a scrambled partial DFT: cos and sin rows of random frequencies.

    The orthonormal real DFT basis has the rows √(2/n)·cos(2πfk/n) and √(2/n)·sin(2πfk/n)
    for 0 < f < n/2 (and the single DC / Nyquist rows). ``m`` rows are drawn from that
    basis, so A·Aᵀ = (n/m)·I exactly.
    """
    _check_mn(m, n)
    rng = np.random.default_rng(rng)
    rows = np.sort(rng.choice(n, size=m, replace=False))   # indices into the real basis
    signs = rng.choice([-1.0, 1.0], size=n)
    scale = np.sqrt(n / m)
    kind, freq = _real_dft_layout(n)
    kind, freq = kind[rows], freq[rows]

    def matvec(x: Array) -> Array:
        spec = sfft.rfft(signs * x)                # unnormalized: Σ x_k e^{-2πifk/n}
        coef = np.where(kind == 0, spec[freq].real, -spec[freq].imag)
        return scale * coef * _real_dft_norm(kind, freq, n)

    def rmatvec(r: Array) -> Array:
        spec = np.zeros(n // 2 + 1, dtype=complex)
        w = scale * r * _real_dft_norm(kind, freq, n)
        np.add.at(spec, freq, np.where(kind == 0, w, -1j * w))
        # Σ_f Re(spec_f e^{2πifk/n}) = real part of the inverse transform (times n)
        full = np.zeros(n, dtype=complex)
        full[: n // 2 + 1] = spec
        return signs * (sfft.ifft(full) * n).real

    return MeasurementOperator((m, n), matvec, rmatvec, name="partial-fourier")


def _real_dft_layout(n: int) -> tuple[Array, Array]:
    """(kind, frequency) of each row of the orthonormal real DFT basis; kind 0=cos, 1=sin."""
    freqs = np.arange(n // 2 + 1)
    has_sin = (freqs > 0) & (2 * freqs < n)
    kind = np.concatenate([np.zeros(len(freqs), int), np.ones(has_sin.sum(), int)])
    freq = np.concatenate([freqs, freqs[has_sin]])
    return kind, freq


def _real_dft_norm(kind: Array, freq: Array, n: int) -> Array:
    """Normalization making each cos / sin row unit-norm (DC and Nyquist use 1/√n)."""
    edge = (freq == 0) | (2 * freq == n)
    return np.where(edge, 1.0 / np.sqrt(n), np.sqrt(2.0 / n))


OPERATORS: dict[str, Callable[..., MeasurementOperator]] = {
    "gaussian": gaussian_operator,
    "dct": partial_dct_operator,
    "fourier": partial_fourier_operator,
}


def make_operator(kind: str, m: int, n: int, rng: np.random.Generator | int | None = None
                  ) -> MeasurementOperator:
    """Build a registered operator by name (``"gaussian"``, ``"dct"``, ``"fourier"``)."""
    try:
        factory = OPERATORS[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {sorted(OPERATORS)}, got {kind!r}") from None
    return factory(m, n, rng)
