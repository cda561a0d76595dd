"""Similarity, effective rank and dead-channel measures against known answers."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prunekit.diagnose.dead import dead_fraction, dead_mask
from prunekit.diagnose.moments import ChannelMoments
from prunekit.diagnose.rank import effective_rank, energy_rank, erank_from_singular_values
from prunekit.diagnose.similarity import correlation, cosine_similarity, summarize


def test_duplicated_filters_have_similarity_one():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, 3, 3, generator=gen)
    w[2] = w[0]
    w[3] = 2.5 * w[1]  # a scaled copy is still a duplicate in direction
    cos = cosine_similarity(w)
    assert cos[0, 2] == pytest.approx(1.0, abs=1e-9)
    assert cos[1, 3] == pytest.approx(1.0, abs=1e-9)
    assert correlation(w)[0, 2] == pytest.approx(1.0, abs=1e-9)
    s = summarize(cos, threshold=0.9)
    assert s.duplicates == 2 and s.valid == 4 and s.pairs == 6


def test_orthogonal_filters_have_similarity_zero():
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1),
                                       dtype=torch.float64))
    cos = cosine_similarity(q.T[:8])  # 8 orthonormal rows
    off = cos - torch.eye(8, dtype=torch.float64)
    assert off.abs().max() < 1e-9
    s = summarize(cos)
    assert s.mean_abs == pytest.approx(0.0, abs=1e-9)
    assert s.frac_above == 0.0 and s.duplicates == 0


def test_negated_copy_is_similar_but_not_a_duplicate():
    w = torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0], [3.0, -1.0, 0.5]])
    s = summarize(cosine_similarity(w), threshold=0.9)
    assert s.frac_above == pytest.approx(1 / 3)
    assert s.duplicates == 0  # a ReLU treats w and −w differently


def test_zero_channel_is_left_out_of_summaries():
    w = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    cos = cosine_similarity(w)
    assert torch.isnan(cos[1]).all()
    s = summarize(cos)
    assert s.valid == 2 and s.pairs == 1 and s.mean_abs == pytest.approx(0.0)
    lone = summarize(cosine_similarity(torch.tensor([[1.0, 2.0]])))
    assert lone.mean_abs is None and lone.valid == 1


@pytest.mark.parametrize("rank", [1, 3, 6])
def test_erank_of_rank_r_matrix_is_at_most_r(rank):
    gen = torch.Generator().manual_seed(rank)
    a = torch.randn(500, rank, generator=gen) @ torch.randn(rank, 12, generator=gen)
    for center in (True, False):
        e = effective_rank(a, center=center)
        assert 1.0 - 1e-9 <= e <= rank + 1e-6
    sigma = torch.linalg.svdvals(a.double() - a.double().mean(0))
    assert energy_rank(sigma, 0.99) <= rank


def test_erank_of_isotropic_data_is_n():
    gen = torch.Generator().manual_seed(3)
    n = 10
    a = torch.randn(20000, n, generator=gen, dtype=torch.float64)
    assert effective_rank(a) == pytest.approx(n, rel=0.01)
    whitened = torch.linalg.qr(a - a.mean(0))[0]  # exactly equal singular values
    assert effective_rank(whitened) == pytest.approx(n, rel=1e-9)


def test_erank_of_known_spectrum_and_energy_rank():
    sigma = torch.tensor([3.0, 1.0, 0.0])
    p = torch.tensor([0.75, 0.25])
    assert erank_from_singular_values(sigma) == pytest.approx(
        math.exp(-(p * p.log()).sum().item()))
    assert energy_rank(torch.tensor([3.0, 1.0, 0.1]), 0.89) == 1  # 9 / 10.01 = 0.899
    assert energy_rank(torch.tensor([3.0, 1.0, 0.1]), 0.9) == 2
    assert energy_rank(torch.tensor([3.0, 1.0, 0.1]), 0.99) == 2
    assert erank_from_singular_values(torch.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="energy"):
        energy_rank(sigma, 0.0)


def test_dead_fraction_counts_exactly_the_zeroed_channels():
    gen = torch.Generator().manual_seed(4)
    a = torch.relu(torch.randn(32, 10, 5, 5, generator=gen)) + 0.01
    a[:, [2, 7, 9]] = 0.0
    assert dead_fraction(a, dim=1) == pytest.approx(3 / 10)
    m = ChannelMoments.from_matrix(a.movedim(1, -1).reshape(-1, 10))
    assert dead_mask(m).nonzero().flatten().tolist() == [2, 7, 9]
    with pytest.raises(ValueError, match="tol"):
        dead_mask(m, tol=-1.0)


def test_streaming_moments_equal_one_shot():
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(300, 6, generator=gen)
    m = ChannelMoments.empty(6)
    for chunk in a.split(77):
        m.update(chunk)
    full = ChannelMoments.from_matrix(a)
    assert m.n == 300
    assert torch.allclose(m.gram, full.gram) and torch.allclose(m.covariance(),
                                                                full.covariance())
    with pytest.raises(ValueError, match="6"):
        m.update(torch.randn(3, 5))


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(2, 40), cols=st.integers(1, 8), seed=st.integers(0, 10_000),
       scale=st.floats(1e-3, 1e3))
def test_properties_of_the_measures(rows, cols, seed, scale):
    a = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    cos = cosine_similarity(a.T)
    assert torch.allclose(cos, cos.T, equal_nan=True)
    assert float(cos.nan_to_num(0).abs().max()) <= 1.0
    e = effective_rank(a)
    rank = int(torch.linalg.matrix_rank(a - a.mean(0)))
    assert e <= rank + 1e-6 and (e >= 1.0 - 1e-9 or rank == 0)
    # scale invariance: similarity and erank do not depend on the units
    assert effective_rank(scale * a) == pytest.approx(e, rel=1e-6, abs=1e-9)
    assert torch.allclose(cosine_similarity(scale * a.T), cos, equal_nan=True, atol=1e-9)
