"""Proximal group-lasso training on hand-built coupled groups (graph contract)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from methods_helpers import SmallCNN, cnn_groups, mlp, mlp_groups, slice_out

from prunekit.methods import Budget, ProximalGroupLasso


def _reference_prox(model, group_set, tau_of, l1=0.0):
    """Independent loop implementation: per channel, soft-threshold the concatenation of
    the parameter slices of all members (buffers skipped)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        if l1:
            done = set()
            for g in group_set.groups:
                for m in g.members:
                    if m.param in params and m.param not in done:
                        done.add(m.param)
                        p = params[m.param]
                        p.copy_(torch.sign(p) * torch.clamp(p.abs() - l1, min=0))
        factors = []
        for g in group_set.groups:  # every factor from the same weights, then applied
            members = [m for m in g.members if m.param in params]
            n_el = sum(len(m.index[0]) * params[m.param].numel() // params[m.param].shape[m.dim]
                       for m in members)
            tau = tau_of(n_el)
            for c in range(g.size):
                parts = [params[m.param].index_select(m.dim, torch.tensor(m.index[c]))
                         for m in members]
                norm = math.sqrt(sum(float((t**2).sum()) for t in parts))
                factors.append((members, c, max(0.0, 1 - tau / norm) if norm > 0 else 0.0))
        for members, c, s in factors:
                for m in members:
                    idx = torch.tensor(m.index[c])
                    p = params[m.param]
                    p.index_copy_(m.dim, idx, p.index_select(m.dim, idx) * s)


def _train_step(model, opt, x, y):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


@pytest.mark.parametrize("l1_ratio", [0.0, 0.3])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_step_equals_optimizer_step_then_reference_prox(kind, l1_ratio):
    model = mlp() if kind == "mlp" else SmallCNN()
    gs = mlp_groups(model) if kind == "mlp" else cnn_groups(model)
    ref = copy.deepcopy(model)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    lr, lam = 0.5, 0.05
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=lr), model, gs, lam=lam,
                             l1_ratio=l1_ratio)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=lr)
    for _ in range(3):
        _train_step(model, opt, x, y)
        _train_step(ref, ref_opt, x, y)
        _reference_prox(ref, gs, lambda n: lr * lam * (1 - l1_ratio) * math.sqrt(n),
                        l1=lr * lam * l1_ratio)
    for (n, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=n)


def test_exact_zero_groups_events_and_zero_group_invariance():
    model = SmallCNN()
    gs = cnn_groups(model)
    events = []
    opt = ProximalGroupLasso(torch.optim.Adam(model.parameters(), lr=0.01), model, gs,
                             lam=3.0, on_zero=events.append)
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    for _ in range(40):
        _train_step(model, opt, x, y)
    zeros = opt.zero_groups()
    assert zeros, "a large λ must drive some channels to exactly zero"
    assert {(e.group_id, c) for e in events for c in e.channels} >= {
        (g, c) for g, cs in zeros.items() for c in cs}
    assert all(e.step >= 1 for e in events)
    params = dict(model.named_parameters())
    for gid, chans in zeros.items():
        g = next(g for g in gs.groups if g.id == gid)
        for m in g.members:
            if m.param in params:
                idx = torch.tensor([i for c in chans for i in m.index[c]])
                assert torch.all(params[m.param].index_select(m.dim, idx) == 0)
    # zero-group invariance, with a reference surgery that slices every member
    model.eval()
    xt = torch.rand(8, 1, 8, 8)
    before = model(xt)
    removal = opt.removal_plan()
    new = slice_out(model, gs, removal)
    small = SmallCNN(c1=new["conv1.weight"].shape[0], c2=new["conv2.weight"].shape[0])
    state = model.state_dict() | new
    small.load_state_dict(state)
    small.eval()
    torch.testing.assert_close(small(xt), before, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_finalize_with_graph_and_surgery_keeps_outputs(kind):
    graph = pytest.importorskip("prunekit.graph")
    pytest.importorskip("prunekit.surgery")
    model = mlp() if kind == "mlp" else SmallCNN()
    x = torch.rand(32, 1, 8, 8)
    y = torch.randint(0, 10, (32,))
    gs = graph.build_groups(model, x[:2])
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.5), model, gs, lam=0.3,
                             example_inputs=x[:2])
    for _ in range(10):
        _train_step(model, opt, x, y)
    n_zero = sum(len(c) for c in opt.removal_plan().values())
    assert n_zero > 0
    model.eval()
    before = model(x)
    n_before = sum(p.numel() for p in model.parameters())
    opt.finalize()
    assert sum(p.numel() for p in model.parameters()) < n_before
    torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-4)


def test_lr_zero_or_lam_zero_is_plain_optimizer():
    model = mlp()
    ref = copy.deepcopy(model)
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.1), model,
                             mlp_groups(model), lam=0.0)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    x, y = torch.rand(8, 64), torch.randint(0, 10, (8,))
    _train_step(model, opt, x, y)
    _train_step(ref, ref_opt, x, y)
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)


def test_budget_mode_lands_within_five_percent():
    torch.manual_seed(0)
    model = mlp((64, 48, 32, 10))
    gs = mlp_groups(model)
    x, y = torch.rand(256, 64), torch.randint(0, 10, (256,))
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.2), model, gs, lam=1e-3,
                             budget=Budget(fraction=0.4, kind="macs", dual_lr=0.2),
                             example_inputs=x[:2])
    for _ in range(150):
        _train_step(model, opt, x, y)
    assert opt.state.lam_at_budget > 1e-3  # λ went up to meet the budget
    target = 0.4 * opt.dense_cost
    landed = opt.current_cost(opt.removal_plan())
    assert landed <= target * 1.0 + 1e-6
    assert landed >= 0.95 * target


def test_cost_model_matches_measure_count_macs():
    measure = pytest.importorskip("prunekit.measure")
    model = SmallCNN()
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.1), model,
                             cnn_groups(model), lam=0.1, budget=Budget(0.5),
                             example_inputs=torch.rand(1, 1, 8, 8))
    macs = measure.count_macs(model, torch.rand(1, 1, 8, 8))
    weight_macs = opt.dense_cost
    assert 0.9 * macs <= weight_macs <= macs  # BN / bias / pooling are the difference


def test_invalid_arguments():
    model = mlp()
    gs = mlp_groups(model)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="lam"):
        ProximalGroupLasso(sgd, model, gs, lam=-1)
    with pytest.raises(ValueError, match="l1_ratio"):
        ProximalGroupLasso(sgd, model, gs, lam=1, l1_ratio=1.0)
    with pytest.raises(ValueError, match="weights"):
        ProximalGroupLasso(sgd, model, gs, lam=1, weights="cubic")
    gs.groups[0].members[0].param = "nope.weight"
    with pytest.raises(ValueError, match="nope.weight"):
        ProximalGroupLasso(sgd, model, gs, lam=1)
    with pytest.raises(ValueError, match="fraction"):
        Budget(fraction=0.0)
