"""State-space identification: structure makes the support identifiable and right."""

import numpy as np
import pytest

from prunekit.apps.ssid import identify_structured, identify_unstructured
from prunekit.apps.ssid_metrics import (
    align,
    block_support,
    parameter_errors,
    prediction_error,
    support_f1,
)
from prunekit.apps.state_space import (
    StateSpace,
    align_to_c_pattern,
    n4sid,
    networked_system,
    simulate,
)

SENSORS = np.repeat(np.arange(10), 2)     # two local sensors per node, 10 nodes × 2 states


def _data(noise, seed, steps=400):
    rng = np.random.default_rng(seed)
    system = networked_system(n_nodes=10, state_dim=2, n_inputs=10, rng=rng)
    return system, simulate(system, rng.standard_normal((steps, 10)), noise, rng)


@pytest.mark.parametrize("seed", [0, 1])
def test_structured_support_f1_at_moderate_noise(seed):
    """20 states, 5 % noise on states and outputs, 400 samples."""
    system, data = _data(0.05, seed)
    truth = block_support(system, system.node)
    est = identify_structured(data.u, data.y, SENSORS, state_dim=2)
    f1_structured = support_f1(truth, block_support(est, est.node))
    unstructured = identify_unstructured(data.u, data.y, order=20)
    f1_unstructured = support_f1(truth, block_support(unstructured, system.node))
    assert f1_structured >= 0.95
    assert f1_unstructured < 0.95          # no zeros in an arbitrary basis: support lost
    # the structured model also predicts held-out data better
    u_test = np.random.default_rng(99).standard_normal((200, 10))
    assert prediction_error(est, system, u_test) < prediction_error(unstructured, system, u_test)


def test_noiseless_n4sid_recovers_the_system_up_to_similarity():
    system, data = _data(0.0, 3, steps=300)
    est, states = n4sid(data.u, data.y, order=20, horizon=3)
    u_test = np.random.default_rng(0).standard_normal((100, 10))
    assert prediction_error(est, system, u_test) < 1e-6
    errs = parameter_errors(align(est, system), system)
    assert max(errs.values()) < 1e-6
    # the C pattern pins the basis down to one d×d block per node
    aligned, _ = align_to_c_pattern(est, states, SENSORS, 2)
    blockwise = parameter_errors(align(aligned, system, block_node=system.node), system)
    assert max(blockwise.values()) < 1e-6


def test_align_inverts_a_block_diagonal_similarity():
    system = networked_system(rng=0)
    rng = np.random.default_rng(1)
    t = np.zeros((20, 20))
    for k in range(10):
        t[2 * k:2 * k + 2, 2 * k:2 * k + 2] = rng.standard_normal((2, 2)) + 2 * np.eye(2)
    moved = system.transformed(t)
    assert support_f1(block_support(system, system.node),
                      block_support(moved, system.node)) == 1.0     # block pattern invariant
    back = align(moved, system, block_node=system.node)
    assert max(parameter_errors(back, system).values()) < 1e-8


def test_support_f1_and_input_checks():
    assert support_f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert support_f1([1, 0], [0, 0]) == 0.0
    system = networked_system(rng=0)
    with pytest.raises(ValueError, match="noise"):
        simulate(system, np.zeros((5, 10)), noise=-1)
    with pytest.raises(ValueError, match="shape"):
        simulate(system, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="does not determine"):
        c = np.ones((4, 20))
        align_to_c_pattern(StateSpace(system.A, system.B, c), np.zeros((5, 20)),
                           np.arange(4), 2)
    with pytest.raises(ValueError, match="nodes_per_input"):
        networked_system(nodes_per_input=0)
