"""How well an identified state-space model matches the truth.

- :func:`block_support` / :func:`support_f1`: node-level pattern of A (off-diagonal
  blocks) and B, the quantity that is invariant under the block-diagonal similarities
  the C pattern leaves free.
- :func:`align`: the similarity T (full, or block diagonal) that best maps the estimate
  onto the truth, by linear least squares on A T = T Â, T B̂ = B, C T = Ĉ; parameter
  errors are measured after it ("modulo the transforms the structure still allows").
- :func:`prediction_error`: output NRMSE of the noise-free responses on held-out inputs
  (basis independent).
"""

from __future__ import annotations

import numpy as np

from prunekit.apps.state_space import StateSpace, propagate

Array = np.ndarray


def block_norms(system: StateSpace, node: Array) -> tuple[Array, Array]:
    """Frobenius norms of the node blocks: A (nodes × nodes) and B (nodes × inputs)."""
    nodes = np.unique(node)
    a = np.array([[np.linalg.norm(system.A[np.ix_(node == k, node == l)]) for l in nodes]
                  for k in nodes])
    b = np.array([[np.linalg.norm(system.B[node == k, j]) for j in range(system.B.shape[1])]
                  for k in nodes])
    return a, b


def block_support(system: StateSpace, node: Array, rel_threshold: float = 0.0) -> Array:
    """Flat boolean support: off-diagonal A blocks then B blocks, nonzero above
    ``rel_threshold`` × the largest block norm of the same matrix."""
    a, b = block_norms(system, node)
    off = ~np.eye(len(a), dtype=bool)
    sa = a[off] > rel_threshold * a[off].max(initial=0.0)
    sb = b.ravel() > rel_threshold * b.max(initial=0.0)
    return np.concatenate([sa, sb])


def support_f1(true: Array, est: Array) -> float:
    """F1 score of an estimated support against the true one."""
    true, est = np.asarray(true, bool), np.asarray(est, bool)
    tp = np.count_nonzero(true & est)
    if tp == 0:
        return 0.0
    precision, recall = tp / np.count_nonzero(est), tp / np.count_nonzero(true)
    return float(2 * precision * recall / (precision + recall))


def align(est: StateSpace, truth: StateSpace, block_node: Array | None = None) -> StateSpace:
    """``est`` expressed in the basis that best matches ``truth``.

    T minimizes ‖A T − T Â‖² + ‖T B̂ − B‖² + ‖C T − Ĉ‖² (linear in T) over all T, or over
    block-diagonal T when ``block_node`` (node of each state) is given.
    """
    n = truth.n
    eye = np.eye(n)
    # column-major vec: vec(XTY) = (Yᵀ ⊗ X) vec(T)
    lhs = np.vstack([np.kron(eye, truth.A) - np.kron(est.A.T, eye),
                     np.kron(est.B.T, eye),
                     np.kron(eye, truth.C)])
    rhs = np.concatenate([np.zeros(n * n), truth.B.ravel(order="F"), est.C.ravel(order="F")])
    allowed = np.ones((n, n), bool) if block_node is None else \
        np.equal.outer(block_node, block_node)
    cols = np.flatnonzero(allowed.ravel(order="F"))
    t = np.zeros(n * n)
    t[cols] = np.linalg.lstsq(lhs[:, cols], rhs, rcond=None)[0]
    return est.transformed(t.reshape(n, n, order="F"))


def parameter_errors(est: StateSpace, truth: StateSpace) -> dict[str, float]:
    """Relative Frobenius errors of A, B, C (call :func:`align` first)."""
    return {name: float(np.linalg.norm(getattr(est, name) - getattr(truth, name))
                        / np.linalg.norm(getattr(truth, name))) for name in ("A", "B", "C")}


def prediction_error(est: StateSpace, truth: StateSpace, u: Array) -> float:
    """NRMSE ‖ŷ − y‖/‖y‖ of the noise-free responses to ``u`` from a zero state."""
    def response(s: StateSpace) -> Array:
        return propagate(s, u, np.zeros(s.n), np.zeros((len(u), s.n)))[:-1] @ s.C.T

    y = response(truth)
    return float(np.linalg.norm(response(est) - y) / np.linalg.norm(y))
