"""Structured identification of networked state-space models.

    x_{t+1} = A x_t + B u_t + w_t,     y_t = C x_t + v_t

The state of a networked system is split over ``n_nodes`` nodes of ``state_dim``
states. Locality is a *block* sparsity pattern: node k's dynamics depend on a few
neighbours (A[k, l] ≠ 0 only for l near k), an input drives a few nodes (B[k, j]), a
sensor sees one node (C[i, k]).

From input/output data alone, (A, B, C) is identifiable only up to a similarity
x → T x: (T A T⁻¹, T B, C T⁻¹) produces the same outputs for any invertible T (n² free
parameters). A known zero pattern of C removes most of that freedom: C T⁻¹ must keep
C's zeros, which for sensors that each see one node forces T to be *block diagonal*
(one d×d block per node). Block-level supports of A and B are invariant under such T,
so they become well-defined, estimable quantities — and group sparsity estimates them.

Pipeline (:func:`identify_structured`):

1. :func:`n4sid` — subspace identification: state sequence from an oblique projection
   of future outputs on the past, then least squares for (A, B, C) (unstructured).
2. :func:`align_to_c_pattern` — the basis that puts C's zeros where they belong: the
   columns of T⁻¹ for node k span the null space of the rows of Ĉ of the sensors that
   do not see node k.
3. :func:`fit_group_sparse` — in that basis, regress x_{t+1} on (x_t, u_t) node by node
   with a group lasso on the core (one group per neighbour block of A and per input
   column of B, multi-output over the node's states), λ by BIC on debiased fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class StateSpace:
    """Matrices of x_{t+1} = A x_t + B u_t, y_t = C x_t; ``node[i]`` = node of state i."""

    A: Array
    B: Array
    C: Array
    node: Array = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def n(self) -> int:
        return self.A.shape[0]

    def transformed(self, t: Array) -> StateSpace:
        """The same system in coordinates x' = T x: (T A T⁻¹, T B, C T⁻¹)."""
        t_inv = np.linalg.inv(t)
        return StateSpace(t @ self.A @ t_inv, t @ self.B, self.C @ t_inv, self.node)


@dataclass(frozen=True)
class IOData:
    """Inputs u (T × m), outputs y (T × p), the true states x (T+1 × n) and noise-free y."""

    u: Array
    y: Array
    x: Array
    y_clean: Array


def networked_system(n_nodes: int = 10, state_dim: int = 2, n_inputs: int = 10,
                     nodes_per_input: int = 2, radius: float = 0.9,
                     rng: np.random.Generator | int | None = None) -> StateSpace:
    """Random stable ring network with local inputs and one d-sensor group per node.

    A: node k is coupled to itself and its two ring neighbours (random d×d blocks),
    scaled to spectral radius ``radius``. B: each input drives ``nodes_per_input``
    random nodes. C: block diagonal, each node observed by ``state_dim`` sensors through
    a random well-conditioned d×d block (so that p = n).
    """
    if n_nodes < 3 or state_dim < 1 or n_inputs < 1 or not 0 < radius < 1:
        raise ValueError("need n_nodes >= 3, state_dim >= 1, n_inputs >= 1, 0 < radius < 1")
    if not 1 <= nodes_per_input <= n_nodes:
        raise ValueError(f"nodes_per_input must be in [1, {n_nodes}], got {nodes_per_input}")
    rng = np.random.default_rng(rng)
    d, n = state_dim, n_nodes * state_dim
    node = np.repeat(np.arange(n_nodes), d)
    a = np.zeros((n, n))
    for k in range(n_nodes):
        for l in (k - 1, k, (k + 1) % n_nodes):
            a[_blk(k, d), _blk(l % n_nodes, d)] = rng.standard_normal((d, d))
    a *= radius / np.max(np.abs(np.linalg.eigvals(a)))
    b = np.zeros((n, n_inputs))
    for j in range(n_inputs):
        for k in rng.choice(n_nodes, size=nodes_per_input, replace=False):
            b[_blk(k, d), j] = rng.standard_normal(d)
    c = np.zeros((n, n))
    for k in range(n_nodes):
        c[_blk(k, d), _blk(k, d)] = np.eye(d) + 0.3 * rng.standard_normal((d, d))
    return StateSpace(a, b, c, node)


def _blk(k: int, d: int) -> slice:
    return slice(k * d, (k + 1) * d)


def simulate(system: StateSpace, u: Array, noise: float = 0.0,
             rng: np.random.Generator | int | None = None, x0: Array | None = None) -> IOData:
    """Simulate T steps. ``noise`` is relative: w and v have standard deviation
    ``noise`` × (the per-channel std of the noise-free state / output)."""
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    u = np.asarray(u, dtype=float)
    if u.ndim != 2 or u.shape[1] != system.B.shape[1]:
        raise ValueError(f"u must have shape (T, {system.B.shape[1]}), got {u.shape}")
    rng = np.random.default_rng(rng)
    x0 = np.zeros(system.n) if x0 is None else np.asarray(x0, dtype=float)
    clean = propagate(system, u, x0, np.zeros((len(u), system.n)))
    w = noise * clean.std(0) * rng.standard_normal((len(u), system.n))
    x = propagate(system, u, x0, w)
    y_clean = x[:-1] @ system.C.T
    y = y_clean + noise * (clean[:-1] @ system.C.T).std(0) * rng.standard_normal(y_clean.shape)
    return IOData(u, y, x, (clean[:-1] @ system.C.T))


def propagate(system: StateSpace, u: Array, x0: Array, w: Array) -> Array:
    """States x_0..x_T of x_{t+1} = A x_t + B u_t + w_t from x0 (no output noise)."""
    x = np.empty((len(u) + 1, system.n))
    x[0] = x0
    for t in range(len(u)):
        x[t + 1] = system.A @ x[t] + system.B @ u[t] + w[t]
    return x


def _hankel(z: Array, start: int, rows: int, cols: int) -> Array:
    """Block Hankel matrix: block row r holds z[start + r : start + r + cols]ᵀ."""
    return np.vstack([z[start + r: start + r + cols].T for r in range(rows)])


def n4sid(u: Array, y: Array, order: int, horizon: int = 8) -> tuple[StateSpace, Array]:
    """Subspace identification (N4SID, unweighted; D = 0). Returns (system, states).

    With past/future block Hankel matrices W_p = [U_p; Y_p], U_f, Y_f of ``horizon``
    block rows, the oblique projection O = Y_f /_{U_f} W_p (the part of the regression of
    Y_f on [W_p; U_f] carried by W_p) has rank ``order``; its SVD O ≈ U₁ S₁ V₁ᵀ gives the
    state sequence X = S₁^{1/2} V₁ᵀ (Van Overschee & De Moor 1994). A, B, C then follow
    by least squares from X_{t+1} = A X_t + B u_t and y_t = C X_t. The basis of X is
    arbitrary: the estimate is defined only up to similarity.
    """
    u, y = np.atleast_2d(np.asarray(u, float)), np.atleast_2d(np.asarray(y, float))
    if len(u) != len(y):
        raise ValueError(f"u and y must have the same length, got {len(u)} and {len(y)}")
    cols = len(y) - 2 * horizon + 1
    if order < 1 or cols <= order + u.shape[1] * 2 * horizon:
        raise ValueError(f"not enough data for order={order}, horizon={horizon}")
    wp = np.vstack([_hankel(u, 0, horizon, cols), _hankel(y, 0, horizon, cols)])
    uf, yf = _hankel(u, horizon, horizon, cols), _hankel(y, horizon, horizon, cols)
    coef = np.linalg.lstsq(np.vstack([wp, uf]).T, yf.T, rcond=None)[0].T
    obl = coef[:, : wp.shape[0]] @ wp
    left, s, vt = np.linalg.svd(obl, full_matrices=False)
    states = (np.sqrt(s[:order])[:, None] * vt[:order]).T        # (cols, order)
    system = least_squares_system(states, u[horizon: horizon + cols], y[horizon: horizon + cols])
    return system, states


def least_squares_system(states: Array, u: Array, y: Array) -> StateSpace:
    """(A, B) from x_{t+1} ≈ A x_t + B u_t and C from y_t ≈ C x_t, by least squares."""
    z = np.hstack([states[:-1], u[:-1]])
    ab = np.linalg.lstsq(z, states[1:], rcond=None)[0].T
    c = np.linalg.lstsq(states, y, rcond=None)[0].T
    n = states.shape[1]
    return StateSpace(ab[:, :n], ab[:, n:], c)


def align_to_c_pattern(system: StateSpace, states: Array, sensor_node: Array,
                       state_dim: int) -> tuple[StateSpace, Array]:
    """Change of basis making Ĉ T⁻¹ zero wherever the known C pattern is zero.

    ``sensor_node[i]`` is the node that sensor i sees. For node k, the d columns of
    M = T⁻¹ must satisfy Ĉ_{i,:} M_k = 0 for every sensor i not seeing k, so M_k spans the
    (numerical) null space of those rows: their d smallest right singular vectors. The
    pattern determines the basis only if at least n − d sensors do not see each node
    (ValueError otherwise). Within a node the basis is then fixed by making the node's
    own sensor block of C the identity when it is square.
    """
    n, d = system.n, state_dim
    sensor_node = np.asarray(sensor_node)
    n_nodes = n // d
    if n % d or len(sensor_node) != system.C.shape[0]:
        raise ValueError("state_dim must divide the order and sensor_node match C's rows")
    blocks = []
    for k in range(n_nodes):
        rows = system.C[sensor_node != k]
        if rows.shape[0] < n - d:
            raise ValueError(f"the C pattern does not determine the basis of node {k}: "
                             f"{rows.shape[0]} sensors miss it, need >= {n - d}")
        mk = np.linalg.svd(rows)[2][-d:].T                           # (n, d)
        own = system.C[sensor_node == k] @ mk
        if own.shape == (d, d) and np.linalg.cond(own) < 1e12:
            mk = mk @ np.linalg.inv(own)
        blocks.append(mk)
    m = np.hstack(blocks)
    t = np.linalg.inv(m)
    aligned = system.transformed(t)
    return StateSpace(aligned.A, aligned.B, aligned.C, np.repeat(np.arange(n_nodes), d)), \
        states @ t.T
