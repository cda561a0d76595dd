"""Greedy and model-based recovery: (block-)OMP and model-based CoSaMP.

- :func:`block_omp`: orthogonal matching pursuit over groups (Eldar, Kuppinger,
  Bölcskei 2010). Each step adds the group g maximizing ‖A_gᵀ r‖₂ and refits least
  squares on all chosen groups. Plain OMP is block-OMP with singleton groups.
- :func:`cosamp`: model-based CoSaMP (Needell & Tropp 2009; Baraniuk et al. 2010). Each
  step merges the support of the model projection of the proxy Aᵀr (size 2k) with the
  current support, solves least squares there and projects back onto the model (size
  k). With :class:`SparseModel` it is plain CoSaMP; with block / tree models it is the
  model-based version; the projections are exact (see :mod:`prunekit.apps.models`).

``A`` is a dense matrix or a :class:`~prunekit.apps.operators.MeasurementOperator`;
least squares on a support uses the sub-matrix of the support's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from prunekit.apps.operators import MeasurementOperator, dense_operator

Array = np.ndarray


class Model(Protocol):
    name: str

    def support(self, v: Array, k: int) -> Array: ...


@dataclass(frozen=True)
class Recovery:
    """Result of a recovery: estimate ``x``, its boolean ``support``, iterations used."""

    x: Array
    support: Array
    n_iter: int
    method: str


def as_operator(a: Array | MeasurementOperator) -> MeasurementOperator:
    """Accept a dense matrix or an operator."""
    if isinstance(a, MeasurementOperator):
        return a
    return dense_operator(a)


def _check_y(op: MeasurementOperator, y: Array) -> Array:
    y = np.asarray(y, dtype=float)
    if y.shape != (op.shape[0],):
        raise ValueError(f"y must have shape ({op.shape[0]},), got {y.shape}")
    return y


def least_squares_on(op: MeasurementOperator, y: Array, support: Array) -> Array:
    """x with x[~support] = 0 and x[support] = argmin ‖y − A_S z‖₂ (min-norm if ill-posed)."""
    x = np.zeros(op.shape[1])
    idx = np.flatnonzero(support)
    if len(idx):
        x[idx] = np.linalg.lstsq(op.columns(idx), y, rcond=None)[0]
    return x


def _residual_small(r: Array, y: Array, tol: float) -> bool:
    return float(np.linalg.norm(r)) <= tol * max(float(np.linalg.norm(y)), 1e-300)


def block_omp(a: Array | MeasurementOperator, y: Array, groups: list[list[int]],
              max_groups: int | None = None, tol: float = 1e-10) -> Recovery:
    """Block orthogonal matching pursuit.

    Parameters
    ----------
    a : (m, n) matrix or operator.
    y : (m,) measurements.
    groups : index lists (a partition of range(n)); singletons give plain OMP.
    max_groups : stop after this many groups (default: while the columns fit in m).
    tol : stop when ‖r‖ ≤ tol·‖y‖.
    """
    op = as_operator(a)
    y = _check_y(op, y)
    cols = op.dense() if not isinstance(a, np.ndarray) else np.asarray(a, dtype=float)
    gidx = [np.asarray(g, dtype=int) for g in groups]
    limit = len(gidx) if max_groups is None else int(max_groups)
    chosen: list[int] = []
    x, r = np.zeros(op.shape[1]), y.copy()
    while len(chosen) < limit and not _residual_small(r, y, tol):
        corr = cols.T @ r
        score = np.array([np.linalg.norm(corr[g]) for g in gidx])
        score[chosen] = -1.0
        best = int(np.argmax(score))
        if sum(len(gidx[g]) for g in chosen) + len(gidx[best]) > op.shape[0]:
            break
        chosen.append(best)
        idx = np.concatenate([gidx[g] for g in chosen])
        x = np.zeros(op.shape[1])
        x[idx] = np.linalg.lstsq(cols[:, idx], y, rcond=None)[0]
        r = y - cols @ x
    return Recovery(x, x != 0, len(chosen), "block-omp")


def block_mmp(a: Array | MeasurementOperator, y: Array, groups: list[list[int]],
              max_groups: int | None = None, branch: int = 4, beam: int = 16,
              tol: float = 1e-10) -> Recovery:
    """Multipath block matching pursuit: block-OMP as a beam search over supports.

    Block-OMP commits to the single best-correlated group at each step; one wrong pick
    is never undone. Here every kept support is extended by its ``branch`` best groups,
    the least-squares residual of each child is computed, and the ``beam`` children with
    the smallest residual are kept (duplicates merged) — the multipath idea of Kwon,
    Wang & Shim (2014) over groups. It stops as soon as a support explains y
    (‖r‖ ≤ tol·‖y‖). ``branch=1, beam=1`` is block-OMP.
    """
    if branch < 1 or beam < 1:
        raise ValueError(f"branch and beam must be >= 1, got {branch}, {beam}")
    op = as_operator(a)
    y = _check_y(op, y)
    cols = op.dense() if not isinstance(a, np.ndarray) else np.asarray(a, dtype=float)
    gidx = [np.asarray(g, dtype=int) for g in groups]
    limit = len(gidx) if max_groups is None else int(max_groups)
    start = (float(np.linalg.norm(y)), np.zeros(cols.shape[1]))
    paths: dict[frozenset[int], tuple[float, Array]] = {frozenset(): start}
    best_set, (best_res, best_x) = frozenset(), start
    for _ in range(limit):
        children: dict[frozenset[int], tuple[float, Array]] = {}
        for chosen, (_, x) in paths.items():
            corr = cols.T @ (y - cols @ x)
            score = np.array([np.linalg.norm(corr[g]) for g in gidx])
            score[list(chosen)] = -1.0
            for g in np.argsort(-score)[:branch]:
                child = chosen | {int(g)}
                if child in children or score[g] < 0:
                    continue
                idx = np.concatenate([gidx[i] for i in sorted(child)])
                if len(idx) > op.shape[0]:
                    continue
                xc = np.zeros(cols.shape[1])
                xc[idx] = np.linalg.lstsq(cols[:, idx], y, rcond=None)[0]
                children[child] = (float(np.linalg.norm(y - cols @ xc)), xc)
        if not children:
            break
        ranked = sorted(children.items(), key=lambda kv: kv[1][0])[:beam]
        paths = dict(ranked)
        best_set, (best_res, best_x) = ranked[0]
        if _residual_small(np.array([best_res]), y, tol):
            break
    return Recovery(best_x, best_x != 0, len(best_set), "block-mmp")


def omp(a: Array | MeasurementOperator, y: Array, max_nonzeros: int | None = None,
        tol: float = 1e-10) -> Recovery:
    """Plain OMP: :func:`block_omp` with singleton groups."""
    n = as_operator(a).shape[1]
    rec = block_omp(a, y, [[i] for i in range(n)], max_nonzeros, tol)
    return Recovery(rec.x, rec.support, rec.n_iter, "omp")


def cosamp(a: Array | MeasurementOperator, y: Array, model: Model, k: int,
           max_iter: int = 50, tol: float = 1e-10) -> Recovery:
    """Model-based CoSaMP with model size ``k`` (entries, groups or tree nodes).

    Iterate: Ω = supp M_2k(Aᵀ r);  T = Ω ∪ supp(x);  b = argmin_{supp ⊆ T} ‖y − A b‖;
    S = supp M_k(b);  x = argmin_{supp ⊆ S} ‖y − A x‖ (the least-squares refit on the
    pruned support, as in subspace pursuit);  r = y − A x. Stops when ‖r‖ ≤ tol·‖y‖
    or x stops changing.
    """
    op = as_operator(a)
    y = _check_y(op, y)
    x, r, it = np.zeros(op.shape[1]), y.copy(), 0
    while it < max_iter:
        it += 1
        grow = model.support(op.rmatvec(r), 2 * k) | (x != 0)
        b = least_squares_on(op, y, grow)
        support = model.support(b, k)
        x_new = least_squares_on(op, y, support)
        r = y - op.matvec(x_new)
        stalled = np.linalg.norm(x_new - x) <= tol * max(np.linalg.norm(x_new), 1e-300)
        x = x_new
        if _residual_small(r, y, tol) or stalled:
            break
    return Recovery(x, x != 0, it, f"cosamp-{model.name}")
