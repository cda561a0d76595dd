"""Cost-proportional group weights, minimum widths and latency budgets of proximal GL."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunekit.graph import build_groups
from prunekit.methods import Budget, ProximalGroupLasso
from prunekit.methods.cost import Bilinear, CostModel, LatencyCost, build_cost
from prunekit.methods.proximal import channel_norms


def three_convs(seed: int = 0) -> nn.Module:
    """conv1 and conv2 run at 8×8, conv3 at 2×2: conv2 channels cost ~16× the MACs of
    conv3 channels while holding about as many weights."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4),
                         nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(24, 10))


def cnn_mlp(seed: int = 0) -> nn.Module:
    """Coarse conv channels (many MACs each) and fine hidden neurons (few MACs each)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 10))


X8 = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
Y8 = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(2))


def _step(model, opt, x=X8, y=Y8):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


def _unit_norm_channels(opt):
    """Rescale every channel of every group to norm 1 (all members together)."""
    with torch.no_grad():
        for g in opt.groups:
            norms = channel_norms(g)
            for s in g.slices:
                full = torch.ones(s.param.shape[s.dim])
                full[s.flat] = (1.0 / norms)[s.owner]
                shape = [1] * s.param.ndim
                shape[s.dim] = -1
                s.param.mul_(full.view(shape))


def _macs_per_channel(model, x):
    gs = build_groups(model, x[:1])
    cm = CostModel.build(model, "macs", x[:1])
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.1), model, gs, lam=0.0)
    dense = cm.cost()
    return opt, {g.id: dense - cm.cost(opt.removed_counts({g.id: [0]})) for g in opt.groups}


def test_macs_weights_proportional_to_macs_saved_and_mean_matches_sqrt():
    model = three_convs()
    _, saved = _macs_per_channel(model, X8)
    gs = build_groups(model, X8[:1])
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    sqrt = ProximalGroupLasso(sgd, model, gs, lam=0.1)
    macs = ProximalGroupLasso(sgd, model, gs, lam=0.1, weights="macs", example_inputs=X8[:1])
    w = {g.id: g.weights() for g in macs.groups}
    ratios = [float(w[g][0]) / saved[g] for g in w]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-5)
    channels = sum(g.size for g in macs.groups)
    mean_macs = sum(float(g.weights().sum()) for g in macs.groups) / channels
    mean_sqrt = sum(g.weight * g.size for g in sqrt.groups) / channels
    assert mean_macs == pytest.approx(mean_sqrt, rel=1e-5)


def test_macs_weights_cut_high_mac_channels_first():
    """All channels at norm 1; one prox step with τ between the two weights of conv2's
    and conv3's groups zeroes the expensive conv2 channels (macs), not with sqrt."""
    results = {}
    for weights in ("macs", "sqrt"):
        model = three_convs()
        gs = build_groups(model, X8[:1])
        opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=1.0), model, gs,
                                 lam=0.0, weights=weights, example_inputs=X8[:1])
        _unit_norm_channels(opt)
        w = {g.id: g.weight for g in opt.groups}
        results[weights] = w
        if weights == "macs":
            hi, lo = max(w, key=w.get), min(w, key=w.get)
            opt.lam = 2.0 / (w[hi] + w[lo])  # τ = λ·w: above 1 for hi, below for lo
            opt.prox()
            zeros = opt.zero_groups()
            assert len(zeros.get(hi, [])) == 5  # all but one (min_keep=1)
            assert lo not in zeros
    _, saved = _macs_per_channel(three_convs(), X8)
    expensive = max(saved, key=saved.get)
    assert max(results["macs"], key=results["macs"].get) == expensive
    # sqrt weights rank by elements, which here does not single out the expensive group
    rel = {k: results["macs"][k] / results["sqrt"][k] for k in saved}
    assert rel[expensive] == max(rel.values()) and rel[expensive] > 2 * min(rel.values())


def test_macs_weights_remove_more_macs_per_zeroed_channel_in_training():
    removed = {}
    for weights in ("macs", "sqrt"):
        model = three_convs()
        gs = build_groups(model, X8[:1])
        opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.2), model, gs,
                                 lam=0.002, weights=weights, example_inputs=X8[:1],
                                 budget=Budget(0.5, dual_lr=0.1))
        for _ in range(60):
            _step(model, opt)
        plan = opt.removal_plan(enforce_budget=False)
        n = sum(len(c) for c in plan.values())
        assert n > 0
        removed[weights] = (opt.dense_cost - opt.current_cost(plan)) / n
    assert removed["macs"] > removed["sqrt"]


def test_min_keep_holds_under_huge_lambda_and_keeps_the_strongest():
    model = three_convs()
    gs = build_groups(model, X8[:1])
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.1), model, gs,
                             lam=1e4, weights="macs", example_inputs=X8[:1], min_keep=3)
    strongest = {g.id: set(torch.topk(channel_norms(g) / g.weights(), 3).indices.tolist())
                 for g in opt.groups}
    for _ in range(5):
        _step(model, opt)
    for g in opt.groups:
        alive = set(torch.nonzero(channel_norms(g) > 0).flatten().tolist())
        assert alive == strongest[g.id]
    plan = opt.removal_plan()
    assert all(len(c) == 3 for c in plan.values())
    opt.finalize()
    widths = [m.weight.shape[0] for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert widths == [3, 3, 3, 10]
    assert model(X8).shape == (64, 10)


def test_min_keep_also_bounds_the_budget_top_up():
    model = cnn_mlp()
    gs = build_groups(model, X8[:1])
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.01), model, gs,
                             lam=0.0, budget=Budget(0.25), example_inputs=X8[:1], min_keep=2)
    plan = opt.removal_plan()  # nothing is zero: the top-up picks every channel
    assert all(g.size - len(plan.get(g.id, [])) >= 2 for g in opt.groups)
    assert opt.current_cost(plan) <= 0.25 * opt.dense_cost


def test_min_keep_fraction_of_each_group():
    model = cnn_mlp()  # groups of 4 conv channels and 40 neurons
    gs = build_groups(model, X8[:1])
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.1), model, gs,
                             lam=1e4, example_inputs=X8[:1], min_keep=0.3)
    _step(model, opt)
    alive = {g.size: int((channel_norms(g) > 0).sum()) for g in opt.groups}
    assert alive == {4: 2, 40: 12}  # ceil(0.3·size)


@pytest.mark.parametrize("bad", [0, -1, 1.5, 1.0, True])
def test_min_keep_validates(bad):
    model = cnn_mlp()
    gs = build_groups(model, X8[:1])
    with pytest.raises(ValueError, match="min_keep"):
        ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.1), model, gs, lam=1.0,
                           min_keep=bad)


def _fake_timer(layer, cin, cout):
    """A deterministic 'device': a fixed overhead plus a bilinear term per layer."""
    return 0.05 + 1e-3 * cin + 2e-3 * cout + 1e-4 * cin * cout


def _fake_latency(model, x, **kw):
    return LatencyCost.build(model, x, layer_timer=_fake_timer, latency_fn=lambda m: 2.0,
                             use_cache=False, **kw)


def test_latency_cost_bilinear_and_dense_prediction_exact():
    model = cnn_mlp()
    cost = _fake_latency(model, X8[:1])
    assert cost.cost() == pytest.approx(2.0)  # dense prediction = measured dense latency
    for la in cost.model.layers:
        for ci, co in ((la.n_in, la.n_out), (max(1, la.n_in // 3), max(1, la.n_out // 3))):
            assert cost.tables[la.name](ci, co) == pytest.approx(_fake_timer(la, ci, co))
    narrower = cost.cost({("4.weight", 0): 20, ("6.weight", 1): 20})
    assert narrower < cost.cost()
    # a noisy timer that makes the narrow layer slower is made monotone
    t = Bilinear.through((8, 8), (4, 4), lambda ci, co: 1.0 if (ci, co) == (8, 8) else 1.5)
    assert t(4, 4) <= t(8, 8) and t(4, 8) <= t(8, 8)


def test_latency_budget_validates_and_leaves_model_untouched():
    model = cnn_mlp()
    gs = build_groups(model, X8[:1])
    before = copy.deepcopy(model.state_dict())
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="kind"):
        Budget(0.5, kind="energy")
    with pytest.raises(ValueError, match="tolerance"):
        Budget(0.5, tolerance=1.0)
    with pytest.raises(ValueError, match="threads"):
        ProximalGroupLasso(sgd, model, gs, lam=1.0, example_inputs=X8[:1],
                           budget=Budget(0.5, kind="latency", threads=0))
    with pytest.raises(ValueError, match="example_inputs"):
        ProximalGroupLasso(sgd, model, gs, lam=1.0, budget=Budget(0.5, kind="latency"))
    with pytest.raises(ValueError, match="fraction"):  # fixed overhead: unreachable
        ProximalGroupLasso(sgd, model, gs, lam=1.0, budget=Budget(0.05, kind="latency"),
                           cost_model=_fake_latency(model, X8[:1]))
    with pytest.raises(ValueError, match="latency"):
        build_cost(model, "macs", X8[:1], threads=1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_latency_budget_runs_on_a_tiny_model_with_real_timings(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path))
    model = cnn_mlp()
    gs = build_groups(model, X8[:1])
    probe = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.2), model, gs,
                               lam=0.0, example_inputs=X8[:1],
                               budget=Budget(1.0, kind="latency", batch_size=64))
    cost = probe.cost_model
    assert isinstance(cost, LatencyCost) and cost.timed > 0
    assert probe.dense_cost > 0 and math.isfinite(probe.dense_cost)
    # the reachable floor depends on this machine's timings: ask for half-way to it
    floor = probe.current_cost({g.id: list(range(1, g.size)) for g in probe.groups})
    fraction = 0.5 * (1.0 + floor / probe.dense_cost)
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.2), model, gs,
                             lam=0.002, weights="latency", example_inputs=X8[:1],
                             budget=Budget(fraction, kind="latency", dual_lr=0.2),
                             cost_model=cost)
    assert opt.cost_model is cost
    assert all(bool((g.weights() > 0).all()) for g in opt.groups)
    for _ in range(40):
        _step(model, opt)
    plan = opt.removal_plan()
    assert plan and opt.current_cost(plan) <= fraction * opt.dense_cost + 1e-9
    opt.finalize()
    assert model(X8).shape == (64, 10)


@pytest.mark.parametrize("kind", ["macs", "latency"])
def test_budget_lands_within_five_percent(kind):
    model = cnn_mlp()
    gs = build_groups(model, X8[:1])
    fraction = 0.3 if kind == "macs" else 0.5  # latency: the fixed overhead stays
    cost_model = _fake_latency(model, X8[:1]) if kind == "latency" else None
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.2), model, gs,
                             lam=1e-3, weights=kind, example_inputs=X8[:1],
                             budget=Budget(fraction, kind=kind, dual_lr=0.1),
                             cost_model=cost_model)
    for _ in range(120):
        _step(model, opt)
    assert opt.state.lam_at_budget is not None  # the zeros alone met the budget
    target = fraction * opt.dense_cost
    landed = opt.current_cost(opt.removal_plan())
    assert 0.95 * target <= landed <= target + 1e-9
    assert opt.current_cost() >= 0.95 * target  # the guard never cut below the window


def test_finalize_restore_debiases_survivors_all_or_nothing():
    model = cnn_mlp()
    start = copy.deepcopy(model.state_dict())
    gs = build_groups(model, X8[:1])
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.2), model, gs,
                             lam=0.05, example_inputs=X8[:1])
    for _ in range(20):
        _step(model, opt)
    plan = opt.removal_plan()
    assert plan
    trained = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="restore"):
        opt.finalize(restore={"nope": torch.zeros(1)})
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained[k]), k
    opt.finalize(restore=start)
    keep = [c for c in range(4) if c not in plan.get("0", [])]
    torch.testing.assert_close(model[0].weight, start["0.weight"][keep])
    hidden = [c for c in range(40) if c not in plan.get("4", [])]
    torch.testing.assert_close(model[4].weight, start["4.weight"][hidden][:, _cols(keep)])


def _cols(channels, per=16):
    return [c * per + i for c in channels for i in range(per)]


def test_round_to_makes_kept_widths_multiples_and_keeps_the_budget():
    model = cnn_mlp()  # 4 conv channels (too small to round), 40 hidden neurons
    gs = build_groups(model, X8[:1])
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.01), model, gs,
                             lam=0.0, budget=Budget(0.3), example_inputs=X8[:1])
    plain = opt.removal_plan()
    rounded = opt.removal_plan(round_to=8)
    sizes = {g.id: g.size for g in opt.groups}
    kept = {gid: sizes[gid] - len(rounded.get(gid, [])) for gid in sizes}
    for gid, size in sizes.items():
        if size > 8:
            assert kept[gid] % 8 == 0
            assert set(plain.get(gid, [])) <= set(rounded[gid])  # rounded down: cut more
        else:
            assert rounded.get(gid, []) == plain.get(gid, [])
    assert opt.current_cost(rounded) <= opt.current_cost(plain) <= 0.3 * opt.dense_cost
    # the extra cuts are the weakest kept channels
    hidden = next(g for g in opt.groups if g.size == 40)
    norms = channel_norms(hidden) / hidden.weights()
    extra = set(rounded[hidden.id]) - set(plain.get(hidden.id, []))
    survivors = set(range(40)) - set(rounded[hidden.id])
    assert max(norms[list(extra)]) <= min(norms[list(survivors)])
    opt.finalize(round_to=8)
    assert model[4].weight.shape[0] == kept[hidden.id] and model(X8).shape == (64, 10)


def test_round_to_rounds_up_rather_than_below_min_keep():
    model = cnn_mlp()
    gs = build_groups(model, X8[:1])
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.1), model, gs,
                             lam=1e4, example_inputs=X8[:1], min_keep=5)
    _step(model, opt)  # a huge λ zeroes all but the 5 strongest neurons
    hidden = next(g for g in opt.groups if g.size == 40)
    assert len(opt.removal_plan()[hidden.id]) == 35
    plan = opt.removal_plan(round_to=4)
    assert 40 - len(plan[hidden.id]) == 8  # 5 -> up to 8, not down to 4
    with pytest.raises(ValueError, match="round_to"):
        opt.removal_plan(round_to=0)


def test_weight_cost_overrides_the_cost_behind_cost_weights():
    # a MAC budget with weights="latency" would build a CPU latency table at the example
    # batch; weight_cost supplies the one to use — here a params cost, so the weights must
    # equal those of weights="params" (and differ from the MAC budget's own weights)
    def weights_of(**kw):
        model = three_convs()
        gs = build_groups(model, X8[:1])
        opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.1), model, gs,
                                 lam=0.01, example_inputs=X8[:1], **kw)
        return torch.cat([g.weights() for g in opt.groups])

    params = CostModel.build(three_convs(), "params", X8[:1])
    given = weights_of(weights="latency", budget=Budget(0.5, "macs"), weight_cost=params)
    torch.testing.assert_close(given, weights_of(weights="params"))
    assert not torch.allclose(given, weights_of(weights="macs", budget=Budget(0.5, "macs")))
