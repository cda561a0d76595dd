"""lowrank: the Frobenius + nuclear prox wrapper, exact factorization, latency-gated apply."""

import pytest
import torch
import torch.nn.functional as F
from support import assert_same_state as _same
from support import state_of as _state
from torch import nn

import prunekit
from prunekit import structures
from prunekit.graph import build_groups
from prunekit.methods import ProximalGroupLasso
from prunekit.sparsity.prox import prox_frob_nuclear
from prunekit.structures import lowrank as lr
from prunekit.structures._lowrank_factor import truncated

torch.set_num_threads(1)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(4, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=2, dilation=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16 * 16, 24), nn.ReLU(), nn.Linear(24, 5)).eval()


X = torch.randn(3, 4, 8, 8)


@pytest.mark.parametrize("layer, x", [
    (nn.Conv2d(6, 10, 3, stride=2, padding=1), torch.randn(2, 6, 9, 9)),
    (nn.Conv2d(6, 10, (3, 1), stride=(1, 2), padding=(2, 0), dilation=2, bias=False),
     torch.randn(2, 6, 7, 8)),
    (nn.Conv1d(5, 7, 3, padding=1, padding_mode="reflect"), torch.randn(2, 5, 11)),
    (nn.Linear(20, 12), torch.randn(4, 3, 20)),
])
@pytest.mark.parametrize("rank", [1, 3])
def test_factored_pair_reproduces_the_low_rank_weight(layer, x, rank):
    torch.manual_seed(1)
    pair = lr.factor_layer(layer, rank)
    w_r = truncated(layer, rank)
    if isinstance(layer, nn.Linear):
        ref = F.linear(x, w_r, layer.bias)
    else:
        ref = layer._conv_forward(x, w_r, layer.bias)
    assert pair[0].weight.shape[0] == rank
    torch.testing.assert_close(pair(x), ref, rtol=0, atol=1e-5)


def test_prox_wrapper_applies_the_tested_prox():
    m = _net()
    w0 = m[5].weight.detach().clone()
    c0 = m[0].weight.detach().clone()
    opt = lr.LowRankProx(torch.optim.SGD(m.parameters(), lr=0.5), m, lam=0.3,
                         nuclear_ratio=0.7, layers=["0", "5"])
    opt.step()  # no gradients: the inner step does nothing, only the prox acts
    torch.testing.assert_close(m[5].weight.detach(), prox_frob_nuclear(w0, 0.3, 0.5, 0.7))
    torch.testing.assert_close(m[0].weight.detach(),
                               prox_frob_nuclear(c0.reshape(16, -1), 0.3, 0.5, 0.7)
                               .reshape(c0.shape))
    assert structures.get("lowrank").groups is None


def test_prox_lowers_rank_and_composes_with_group_lasso_both_ways():
    for outer_first in (True, False):
        m = _net()
        sgd = torch.optim.SGD(m.parameters(), lr=0.1)
        gs = build_groups(m, X)
        if outer_first:
            opt = ProximalGroupLasso(lr.LowRankProx(sgd, m, lam=2.0), m, gs, lam=0.5)
        else:
            opt = lr.LowRankProx(ProximalGroupLasso(sgd, m, gs, lam=0.5), m, lam=2.0)
        for _ in range(5):
            opt.zero_grad()
            m(X).pow(2).mean().backward()
            opt.step()
        ranks = {u.name: u.rank for u in lr.find_lowrank(m)}
        assert ranks["5"] < 24
        inner = opt if outer_first else opt.optimizer
        assert inner.zero_groups()


def test_factorize_replaces_cheaper_layers_exactly_and_reports():
    m = _net()
    with torch.no_grad():
        m[5].weight.copy_(truncated(m[5], 2))
        m[2].weight.copy_(truncated(m[2], 3))
    ref = m(X)
    found = {u.name: u for u in lr.find_lowrank(m)}
    assert found["5"].rank == 2 and found["5"].cheaper and not found["7"].cheaper
    res = lr.factorize(m, X, measure=False)
    assert res.plan.layers == {"2": {"rank": 3, "kind": "Conv2d"},
                               "5": {"rank": 2, "kind": "Linear"}}
    assert isinstance(m[5], nn.Sequential) and m[2][0].dilation == (2, 2)
    torch.testing.assert_close(m(X), ref, rtol=0, atol=1e-5)
    assert {r["name"] for r in res.rows if not r["applied"]} == {"0", "7"}


def test_factorize_times_each_layer_and_applies_only_measured_gains():
    m = _net()
    with torch.no_grad():
        m[5].weight.copy_(truncated(m[5], 1))
    ref = m(X)
    res = structures.get("lowrank").prune(m, X, threads=1, warmup=1, repeats=3)
    (row,) = [r for r in res.rows if r["name"] == "5"]
    assert row["latency_before_ms"] > 0 and row["latency_after_ms"] > 0
    assert row["applied"] == (row["latency_after_ms"] < row["latency_before_ms"])
    assert isinstance(m[5], nn.Sequential) == row["applied"]
    torch.testing.assert_close(m(X), ref, rtol=0, atol=1e-5)


def test_bad_requests_leave_the_model_bit_identical():
    m = _net()
    before = _state(m)
    for bad, match in ((["nope"], "not an nn.Linear"), (["1"], "not an nn.Linear"),
                       ({"5": 30}, "must be in"), (["5", "5"], "duplicates")):
        with pytest.raises(ValueError, match=match):
            lr.factorize_layers(m, bad, X)
        _same(before, _state(m))
    with pytest.raises(ValueError, match="nuclear_ratio"):
        lr.LowRankProx(torch.optim.SGD(m.parameters(), lr=0.1), m, lam=1.0, nuclear_ratio=2)
    assert isinstance(m[5], nn.Linear)


def test_plan_round_trip_through_save_and_load(tmp_path):
    m = _net()
    plan = lr.factorize_layers(m, {"5": 4, "0": 2}, X)
    out = m(X)
    path = prunekit.save(m, tmp_path / "ckpt", plan=[plan])
    loaded = prunekit.load(path, _net).eval()
    torch.testing.assert_close(loaded(X), out, rtol=0, atol=0)
    assert lr.LowRankPlan.from_dict(plan.to_dict()) == plan
