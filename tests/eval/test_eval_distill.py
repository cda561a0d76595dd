"""relational_loss: zero exactly when pairwise cosines agree, positive otherwise, gradients
reach the student only; bad shapes are named."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prunekit.eval import relational_loss, similarity_matrix


def test_zero_for_identical_and_for_rotated_rescaled_embeddings():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(8, 16, generator=g)
    assert relational_loss(t.clone(), t) == 0.0
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    scale = torch.rand(8, 1, generator=g) + 0.5
    assert relational_loss(t @ q * scale, t) < 1e-10  # cosines unchanged


def test_positive_when_similarities_differ_and_matches_formula():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 4, generator=g), torch.randn(6, 10, generator=g)  # widths differ
    loss = relational_loss(s, t)
    cs = torch.nn.functional.cosine_similarity(s[:, None], s[None], dim=-1)
    ct = torch.nn.functional.cosine_similarity(t[:, None], t[None], dim=-1)
    assert loss > 0.01
    assert torch.allclose(loss, ((cs - ct) ** 2).mean(), atol=1e-6)


def test_gradient_flows_to_student_not_teacher():
    g = torch.Generator().manual_seed(2)
    s = torch.randn(5, 8, generator=g, requires_grad=True)
    t = torch.randn(5, 8, generator=g, requires_grad=True)
    relational_loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_descent_reduces_the_loss():
    g = torch.Generator().manual_seed(3)
    t = torch.randn(10, 8, generator=g)
    s = torch.randn(10, 8, generator=g, requires_grad=True)
    opt = torch.optim.Adam([s], lr=0.05)
    first = relational_loss(s, t).item()
    for _ in range(50):
        opt.zero_grad()
        relational_loss(s, t).backward()
        opt.step()
    assert relational_loss(s, t).item() < 0.5 * first


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 9), d=st.integers(1, 12), seed=st.integers(0, 10_000))
def test_similarity_matrix_is_symmetric_with_unit_diagonal(n, d, seed):
    e = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    s = similarity_matrix(e)
    assert torch.allclose(s, s.T) and torch.allclose(s.diagonal(), torch.ones(n, dtype=s.dtype))
    assert float(relational_loss(e, e)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("s", "t", "match"), [
    ((4, 3, 2), (4, 3), "student and teacher"),
    ((4, 3), (5, 3), "rows"),
    ((1, 3), (1, 3), "at least 2"),
])
def test_bad_shapes_raise(s, t, match):
    with pytest.raises(ValueError, match=match):
        relational_loss(torch.zeros(s), torch.zeros(t))
