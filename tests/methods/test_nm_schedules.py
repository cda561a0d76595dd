"""N:M masks and the adapter; sparsity schedules against their formulas."""

import itertools

import pytest
import torch
from methods_helpers import mlp
from torch import nn

from prunekit.methods import Cubic, bake, gradual, iterative, nm_mask, nm_prune, one_shot
from prunekit.methods.nm import is_nm_sparse, semi_structured_supported, to_semi_structured


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (4, 8)])
def test_nm_mask_keeps_largest_in_each_block_brute_force(n, m):
    torch.manual_seed(0)
    w = torch.randn(6, 16)
    mask = nm_mask(w, n, m)
    for r, b in itertools.product(range(6), range(16 // m)):
        block = w[r, b * m:(b + 1) * m].abs()
        best = set(torch.argsort(block, descending=True)[:n].tolist())
        assert set(torch.nonzero(mask[r, b * m:(b + 1) * m]).flatten().tolist()) == best
    assert is_nm_sparse(w * mask, n, m) and not is_nm_sparse(w, n, m)


def test_nm_prune_skips_and_conv_layout():
    model = nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 3), nn.Conv2d(2, 4, 2))
    out = nm_prune(model)
    assert out["skipped"] == ["1.weight"]  # 6 inputs is not a multiple of 4
    assert is_nm_sparse(model[0].weight) and is_nm_sparse(model[2].weight)
    with pytest.raises(ValueError, match="multiple"):
        nm_prune(model, names=["1.weight"])
    with pytest.raises(ValueError, match="n <= m"):
        nm_mask(torch.ones(2, 4), 5, 4)


def test_semi_structured_adapter_fallback_keeps_outputs():
    model = mlp((64, 32, 16, 12))
    nm_prune(model)
    bake(model)
    x = torch.rand(4, 64)
    before = model(x)
    backend = to_semi_structured(model[1])
    expected = "semi_structured" if semi_structured_supported() else "dense"
    assert backend == expected == "dense"  # CPU in CI; the GPU path is checked on a GPU
    torch.testing.assert_close(model(x), before)
    with pytest.raises(ValueError, match="2:4"):
        to_semi_structured(nn.Linear(8, 4))
    with pytest.raises(TypeError):
        to_semi_structured(nn.Conv2d(1, 1, 1))


@pytest.mark.skipif(not semi_structured_supported(), reason="needs an sm80+ GPU")
def test_semi_structured_on_gpu_matches_dense():  # pragma: no cover - GPU only
    lin = nn.Linear(128, 128).half().cuda()
    nm_prune(lin, names=["weight"])
    bake(lin)
    x = torch.randn(64, 128, device="cuda", dtype=torch.half)
    ref = lin(x)
    assert to_semi_structured(lin) == "semi_structured"
    torch.testing.assert_close(lin(x), ref, atol=1e-2, rtol=1e-2)


def test_cubic_matches_zhu_gupta_formula():
    s = Cubic(final=0.9, begin=10, n_steps=5, every=4, initial=0.1)
    assert s(0) == 0.1 and s(9) == 0.1
    for t in range(10, 40):
        k = min((t - 10) // 4, 5) * 4
        assert s(t) == pytest.approx(0.9 + (0.1 - 0.9) * (1 - k / 20) ** 3)
    assert s(30) == pytest.approx(0.9) and s(1000) == pytest.approx(0.9)
    vals = [s(t) for t in range(60)]
    assert vals == sorted(vals)
    g = gradual(0.8, begin=0, end=100, every=10)
    assert g(0) == 0.0 and g(100) == pytest.approx(0.8) and g(50) == pytest.approx(0.8 * 0.875)


def test_iterative_and_one_shot():
    it = iterative(0.96, rounds=2, every=3)
    assert it(2) == 0.0 and it(3) == pytest.approx(0.8) and it(6) == pytest.approx(0.96)
    assert it(100) == pytest.approx(0.96)
    o = one_shot(0.5, at=2)
    assert (o(1), o(2)) == (0.0, 0.5)
    with pytest.raises(ValueError):
        iterative(1.0, 2, 1)
    with pytest.raises(ValueError):
        gradual(0.5, begin=5, end=5)
