"""Hot loops, compiled with numba when it is installed, plain Python otherwise.

The same source runs either way, so the fallback is the reference for the compiled code.
All arrays are float64 / int64 numpy arrays; design matrices are Fortran-ordered so that a
column is contiguous.
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba is optional: without it the loops below run as ordinary Python
    from numba import njit as _njit

    HAVE_NUMBA = True
except Exception as exc:  # noqa: BLE001 - a broken numba install must not break prunekit
    import warnings

    if not isinstance(exc, ImportError):
        warnings.warn(f"numba failed to import ({exc!r}); using the slow pure-Python "
                      "kernels", RuntimeWarning, stacklevel=2)
    HAVE_NUMBA = False


def maybe_njit(fn):
    """``numba.njit(cache=True)`` when numba is available, identity otherwise."""
    return _njit(cache=True, nogil=True)(fn) if HAVE_NUMBA else fn


@maybe_njit
def _soft(v: float, t: float) -> float:
    if v > t:
        return v - t
    if v < -t:
        return v + t
    return 0.0


@maybe_njit
def _block_update(v, start, stop, indices, l2_tau, l1, step):
    """In place: ``v`` (block gradient step) → sparse-group prox; returns the new norm."""
    sq = 0.0
    for k in range(start, stop):
        v[k - start] = _soft(v[k - start], l1[indices[k]] * step)
        sq += v[k - start] ** 2
    norm = math.sqrt(sq)
    scale = 0.0 if norm <= l2_tau else 1.0 - l2_tau / norm
    for k in range(start, stop):
        v[k - start] *= scale
    return norm * scale


@maybe_njit
def bcd_epoch_quadratic(X, r, w, ws, indices, ptr, l2, l1, lips, n):
    """One block-CD pass over groups ``ws`` for ``1/(2n)‖y − Xw‖²``; ``r = y − Xw`` kept.

    Group ``g`` takes the exact prox step of length ``1/L_g`` (``L_g = ‖X_g‖₂²/n``).
    """
    buf = np.empty(np.max(ptr[1:] - ptr[:-1]))
    for g in ws:
        start, stop = ptr[g], ptr[g + 1]
        if lips[g] == 0.0:
            continue
        step = 1.0 / lips[g]
        for k in range(start, stop):
            j = indices[k]
            buf[k - start] = w[j] + step * np.dot(X[:, j], r) / n
        _block_update(buf, start, stop, indices, l2[g] * step, l1, step)
        for k in range(start, stop):
            j = indices[k]
            delta = buf[k - start] - w[j]
            if delta != 0.0:
                r -= delta * X[:, j]
                w[j] = buf[k - start]


@maybe_njit
def bcd_epoch_logistic(X, y, xw, w, ws, indices, ptr, l2, l1, lips, n):
    """One block-CD pass for ``1/n Σ log(1 + exp(−y_i x_iᵀw))`` (``y ∈ {−1, 1}``); ``xw`` kept."""
    buf = np.empty(np.max(ptr[1:] - ptr[:-1]))
    raw = np.empty(xw.shape[0])
    for g in ws:
        start, stop = ptr[g], ptr[g + 1]
        if lips[g] == 0.0:
            continue
        step = 1.0 / lips[g]
        for i in range(xw.shape[0]):
            raw[i] = -y[i] / (1.0 + math.exp(y[i] * xw[i])) / n
        for k in range(start, stop):
            j = indices[k]
            buf[k - start] = w[j] - step * np.dot(X[:, j], raw)
        _block_update(buf, start, stop, indices, l2[g] * step, l1, step)
        for k in range(start, stop):
            j = indices[k]
            delta = buf[k - start] - w[j]
            if delta != 0.0:
                xw += delta * X[:, j]
                w[j] = buf[k - start]


@maybe_njit
def dual_bcd_overlap(v, indices, ptr, tau, max_sweeps, tol):
    """Prox of ``Σ_g τ_g ‖x_g‖₂`` for overlapping groups by block CD on the dual.

    Dual: ``min_ξ ½‖v − Σ_g G_gᵀξ_g‖²`` s.t. ``‖ξ_g‖ ≤ τ_g``; each block step is an exact
    projection onto a ball. Returns ``(x, sweeps, gap)`` with ``x = v − Σ_g G_gᵀξ_g`` and
    the duality gap ``P(x) − D(ξ)`` (``‖x − x*‖² ≤ 2·gap``). ``v`` has shape (p, k).
    """
    k = v.shape[1]
    xi = np.zeros((indices.shape[0], k))
    s = np.zeros_like(v)
    gap = np.inf
    half_v2 = 0.5 * np.sum(v * v)
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        for g in range(ptr.shape[0] - 1):
            sq = 0.0
            for m in range(ptr[g], ptr[g + 1]):
                for c in range(k):
                    rc = v[indices[m], c] - s[indices[m], c] + xi[m, c]
                    sq += rc * rc
            norm = math.sqrt(sq)
            shrink = 1.0 if norm <= tau[g] else tau[g] / norm
            for m in range(ptr[g], ptr[g + 1]):
                for c in range(k):
                    new = (v[indices[m], c] - s[indices[m], c] + xi[m, c]) * shrink
                    s[indices[m], c] += new - xi[m, c]
                    xi[m, c] = new
        x = v - s
        primal = 0.5 * np.sum(s * s)
        for g in range(ptr.shape[0] - 1):
            sq = 0.0
            for m in range(ptr[g], ptr[g + 1]):
                for c in range(k):
                    sq += x[indices[m], c] ** 2
            primal += tau[g] * math.sqrt(sq)
        gap = primal - (half_v2 - 0.5 * np.sum(x * x))
        if gap <= tol:
            break
    return v - s, sweeps, gap


@maybe_njit
def bcd_epoch_multinomial(X, Y, xw, W, ws, indices, ptr, l2, l1, lips, n):
    """One block-CD pass for softmax cross-entropy; ``W`` (p, K), ``xw = XW`` kept.

    A block is one group of rows of ``W`` (its features across all K classes).
    """
    K = W.shape[1]
    width = np.max(ptr[1:] - ptr[:-1])
    buf = np.empty((width, K))
    raw = np.empty((W.shape[1], xw.shape[0]))
    for g in ws:
        start, stop = ptr[g], ptr[g + 1]
        if lips[g] == 0.0:
            continue
        step = 1.0 / lips[g]
        for i in range(xw.shape[0]):
            top = xw[i, 0]
            for c in range(1, K):
                top = max(top, xw[i, c])
            tot = 0.0
            for c in range(K):
                raw[c, i] = math.exp(xw[i, c] - top)
                tot += raw[c, i]
            for c in range(K):
                raw[c, i] = (raw[c, i] / tot - Y[i, c]) / n
        sq = 0.0
        for k in range(start, stop):
            j = indices[k]
            for c in range(K):
                v = _soft(W[j, c] - step * np.dot(X[:, j], raw[c]), l1[j] * step)
                buf[k - start, c] = v
                sq += v * v
        norm = math.sqrt(sq)
        scale = 0.0 if norm <= l2[g] * step else 1.0 - l2[g] * step / norm
        for k in range(start, stop):
            j = indices[k]
            for c in range(K):
                delta = buf[k - start, c] * scale - W[j, c]
                if delta != 0.0:
                    xw[:, c] += delta * X[:, j]
                    W[j, c] += delta


@maybe_njit
def sgl_subdiff(w, grad, gs, indices, ptr, l2, l1):
    """Per group in ``gs``: distance of ``−grad_g`` to ``∂(l2_g‖·‖₂ + Σ l1_j|·|)(w_g)``.

    ``w`` and ``grad`` have shape (p, K); a group is a set of rows.
    """
    K = w.shape[1]
    out = np.empty(gs.shape[0])
    for i in range(gs.shape[0]):
        g = gs[i]
        start, stop = ptr[g], ptr[g + 1]
        wn = 0.0
        for k in range(start, stop):
            for c in range(K):
                wn += w[indices[k], c] ** 2
        wn = math.sqrt(wn)
        sq = 0.0
        if wn == 0.0:
            for k in range(start, stop):
                j = indices[k]
                for c in range(K):
                    sq += _soft(grad[j, c], l1[j]) ** 2
            out[i] = max(math.sqrt(sq) - l2[g], 0.0)
            continue
        for k in range(start, stop):
            j = indices[k]
            for c in range(K):
                if w[j, c] != 0.0:
                    sgn = 1.0 if w[j, c] > 0 else -1.0
                    sq += (grad[j, c] + l1[j] * sgn + l2[g] * w[j, c] / wn) ** 2
                else:
                    sq += max(abs(grad[j, c]) - l1[j], 0.0) ** 2
        out[i] = math.sqrt(sq)
    return out
