"""Measurement operators: exact adjoints, row-orthogonality, input checks."""

import numpy as np
import pytest

from prunekit.apps.operators import OPERATORS, dense_operator, make_operator


@pytest.mark.parametrize("kind", sorted(OPERATORS))
@pytest.mark.parametrize("n", [32, 33])
def test_adjoint_identity(kind, n):
    op = make_operator(kind, 11, n, rng=3)
    rng = np.random.default_rng(0)
    x, r = rng.standard_normal(n), rng.standard_normal(11)
    assert np.dot(op.matvec(x), r) == pytest.approx(np.dot(x, op.rmatvec(r)), rel=1e-12)
    assert np.allclose(op.dense() @ x, op.matvec(x))
    assert np.allclose(op.columns(np.array([0, 5])), op.dense()[:, [0, 5]])


@pytest.mark.parametrize("kind", ["dct", "fourier"])
def test_partial_transforms_have_orthogonal_rows(kind):
    m, n = 12, 40
    a = make_operator(kind, m, n, rng=1).dense()
    assert np.allclose(a @ a.T, (n / m) * np.eye(m), atol=1e-12)


def test_gaussian_columns_have_unit_expected_norm():
    a = make_operator("gaussian", 400, 50, rng=0).dense()
    assert np.mean(np.sum(a * a, axis=0)) == pytest.approx(1.0, rel=0.05)


def test_compose_is_an_exact_pair():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    op = make_operator("dct", 6, 16, rng=0).compose(q.__matmul__, q.T.__matmul__)
    assert np.allclose(op.dense(), make_operator("dct", 6, 16, rng=0).dense() @ q)
    r = rng.standard_normal(6)
    assert np.allclose(op.rmatvec(r), op.dense().T @ r)


def test_bad_inputs():
    with pytest.raises(ValueError, match="kind"):
        make_operator("wavelet", 3, 8)
    with pytest.raises(ValueError, match="m="):
        make_operator("dct", 9, 8)
    with pytest.raises(ValueError, match="m must"):
        make_operator("gaussian", 0, 8)
    with pytest.raises(ValueError, match="2-D"):
        dense_operator(np.ones(3))
