"""prune_to_speedup with injected deterministic timers: meets, misses, backs off."""

from __future__ import annotations

import pytest
import torch
from hw_helpers import fake_latency_fn, fake_layer_ms, resnetish

from prunekit.hardware.allocation import Allocation, greedy_path, make_ladder
from prunekit.hardware.latency_model import LatencyModel
from prunekit.hardware.layers import profile_layers
from prunekit.hardware.signature import DeviceSpec
from prunekit.hardware.target import SpeedupResult, prune_to_speedup
from prunekit.measure import count_macs
from prunekit.result import PruneResult

X = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))


def _run(model, target, **kwargs):
    kwargs.setdefault("latency_fn", fake_latency_fn(X, resnetish()))
    return prune_to_speedup(model, X, target, layer_timer=fake_layer_ms, round_to=8,
                            **kwargs)


@pytest.fixture(scope="module")
def met(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PRUNEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    model = resnetish()
    yield model, _run(model, 2.0)
    mp.undo()


def test_meets_the_target_by_measurement_on_hardware_widths(met):
    model, res = met
    dense = resnetish()
    assert isinstance(res, PruneResult) and isinstance(res.speedup, SpeedupResult)
    assert res.speedup.met and not res.notes and res.speedup.kind == "width"
    assert 2.0 <= res.speedup.measured_speedup <= 2.0 * 1.3  # toy ladders are coarse (8 steps)
    fn = fake_latency_fn(X, dense)
    assert res.speedup.measured_speedup == pytest.approx(fn(dense) / fn(model))
    assert res.macs_after == count_macs(model, X) < res.macs_before
    assert res.speedup.mac_reduction == pytest.approx(res.mac_reduction)
    assert res.speedup.rho == pytest.approx(res.speedup.measured_speedup * res.macs_after
                                            / res.macs_before)
    for la in profile_layers(model, X):  # every cut width is on the hardware grid
        dense_la = {d.name: d for d in profile_layers(dense, X)}[la.name]
        if la.n_out != dense_la.n_out:
            assert la.n_out % 8 == 0
    assert model(X).shape == dense(X).shape
    assert res.speedup.search and res.speedup.search[0]["predicted_ms"] > 0


def test_prediction_of_the_returned_plan_is_close_to_the_measurement(met):
    res = met[1]
    assert res.speedup.predicted_ms == pytest.approx(res.speedup.pruned_ms, rel=0.10)


def test_the_plan_replays_on_a_fresh_model(met):
    from prunekit.surgery import apply_plan

    model, res = met
    fresh = apply_plan(resnetish(), res.plan, X)
    assert torch.allclose(fresh(X), model(X), atol=1e-5)


def test_unreachable_target_returns_the_fastest_measured_plan_and_says_so():
    model = resnetish()
    res = _run(model, 50.0, max_ratio=0.5)
    assert not res.speedup.met and any("not met" in n for n in res.notes)
    assert 1.0 < res.speedup.measured_speedup < 50.0
    best = max(r["speedup"] for r in res.speedup.search)
    assert res.speedup.measured_speedup == pytest.approx(best)


def test_backs_off_when_every_cut_model_measures_slower():
    model, dense = resnetish(), resnetish()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_dense = sum(p.numel() for p in dense.parameters())
    slower = lambda m: 10.0 if sum(p.numel() for p in m.parameters()) == n_dense else 12.0  # noqa: E731
    res = _run(model, 2.0, latency_fn=slower)
    assert not res.speedup.met and res.speedup.measured_speedup == 1.0 and not res.plan.groups
    assert any("backed off" in n for n in res.notes)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_greedy_only_cuts_groups_that_save_time():
    model = resnetish()
    layers = profile_layers(model, X)
    costly = {"head.4"}  # only group "head.2" (its input) touches it
    timer = lambda la, cin, cout: (1e-3 * cin * cout if la.name in costly else 1.0)  # noqa: E731
    dense_ms = sum(timer(la, la.n_in, la.n_out) for la in layers)
    lm = LatencyModel.build(model, X, DeviceSpec(), dense_ms, timer, use_cache=False)
    from prunekit.graph import build_groups

    gs = build_groups(model, X)
    weights = {la.weight for la in lm.layers}
    ladders = {g.id: make_ladder(g, g.channel_norms(model), weights, 8, 1, 8)
               for g in gs.groups}
    alloc = Allocation(lm, ladders)
    path = greedy_path(alloc, 0.0)
    steps = len(ladders["head.2"].levels) - 1
    assert [gid for gid, _, _ in path[:steps]] == ["head.2"] * steps  # saves time: first
    assert "head.2" not in {gid for gid, _, _ in path[steps:]}
    assert len(path) == sum(len(lad.levels) - 1 for lad in ladders.values())  # runs on
    assert [p[2] for p in path[:steps]] == sorted((p[2] for p in path[:steps]), reverse=True)


@pytest.mark.parametrize(("kwargs", "field"), [({"target_speedup": 1.0}, "target_speedup"),
                                               ({"target_speedup": "2"}, "target_speedup"),
                                               ({"levels": 1}, "levels"),
                                               ({"max_ratio": 1.0}, "max_ratio")])
def test_rejects_bad_arguments(kwargs, field):
    args = {"target_speedup": 2.0, **kwargs}
    with pytest.raises(ValueError, match=field):
        prune_to_speedup(resnetish(), X, **args)
    with pytest.raises(TypeError, match="nn.Module"):
        prune_to_speedup("model", X, 2.0)


def test_group_multiple_and_refined_ladders():
    from prunekit.hardware.allocation import GroupLadder, group_multiple, refine

    assert group_multiple(3072, 64) == 64
    assert group_multiple(64, 8, per_channel=12) == 2  # 12 indices per channel: 2 give 24
    assert group_multiple(48, 64) == 16
    lad = GroupLadder(None, [], [64, 48, 32], [], {}, multiple=4)
    assert refine(lad, 1) == 3 and lad.levels == [64, 60, 56, 52, 48, 32]
    assert refine(lad, 1) == 0  # already as fine as the multiple allows


def test_ladder_multiple_of_a_vit_hidden_dim_aligns_every_weight():
    # the hidden dim of a ViT is coupled head by head: 4 indices per channel in most
    # weights, 12 in the packed q/k/v projection; the channel multiple must align both
    from torchvision.models import VisionTransformer

    from prunekit.graph import build_groups
    from prunekit.hardware.allocation import make_ladder

    torch.manual_seed(0)
    vit = VisionTransformer(32, 8, 2, 4, 64, 32, num_classes=5).eval()  # 16 channels
    gs = build_groups(vit, torch.randn(1, 3, 32, 32))
    hidden = next(g for g in gs.groups if g.id == "conv_proj")
    weights = {m.param for m in hidden.members if m.param.endswith("weight")}
    sizes = {len(m.index[0]) for m in hidden.members if m.param in weights}
    assert sizes == {4, 12}
    lad = make_ladder(hidden, torch.rand(hidden.size), weights, 8, 1, 4)
    assert lad.multiple == 2  # 2 channels = 8 indices in most weights, 24 in q/k/v
    assert all(w % 2 == 0 for w in lad.levels[1:])


def _counting(fn):
    calls = []

    def wrapped(model):
        calls.append(1)
        return fn(model)

    return wrapped, calls


def test_exact_latency_model_needs_few_measured_candidates():
    # β = 0.2 in the fake hardware too: the uncalibrated latency model is exact here
    fn, calls = _counting(fake_latency_fn(X, resnetish(), beta=0.2))
    res = _run(resnetish(), 1.5, latency_fn=fn)
    assert res.speedup.met and 1.5 <= res.speedup.measured_speedup <= 1.5 * 1.1
    assert len(res.speedup.search) <= 2  # the prediction lands in the window or brackets it
    assert all(abs(r["prediction_error"]) < 1e-9 for r in res.speedup.search)
    # one dense timing, then 2 ABBA rounds (2 timings each) per candidate, no re-timing
    assert len(calls) == 1 + 4 * len(res.speedup.search)


def test_verify_rounds_time_the_returned_plan_again():
    fn, calls = _counting(fake_latency_fn(X, resnetish(), beta=0.2))
    res = _run(resnetish(), 1.5, latency_fn=fn, verify_rounds=3)
    assert res.speedup.met and len(calls) == 1 + 4 * len(res.speedup.search) + 6


def test_optimistic_prediction_is_recalibrated_within_the_budget():
    base = fake_latency_fn(X, resnetish())
    dense_ms = base(resnetish())
    # real hardware 30 % slower than the layer timings say on every pruned model
    fn = lambda m: base(m) if abs(base(m) - dense_ms) < 1e-9 else 1.3 * base(m)  # noqa: E731
    res = _run(resnetish(), 2.0, latency_fn=fn, max_measurements=3, refine_measurements=0)
    first = res.speedup.search[0]
    assert first["speedup"] < 2.0 and first["prediction_error"] < -0.1
    assert 2 <= len(res.speedup.search) <= 3 and res.speedup.met
    assert res.speedup.measured_speedup == pytest.approx(dense_ms / fn(res.model))


def test_warm_cache_times_no_layer_and_gives_the_same_plan():
    cold = _run(resnetish(), 2.0)
    warm = _run(resnetish(), 2.0)
    assert cold.speedup.layer_timings > 0 and warm.speedup.layer_timings == 0
    assert warm.plan.groups.keys() == cold.plan.groups.keys()
    assert set(cold.speedup.stages) == {"trace_score", "probe", "dense_timing", "allocation",
                                "search", "finish"}
    assert cold.speedup.seconds >= sum(cold.speedup.stages.values()) * 0.999


def test_secant_inside_a_measured_bracket_trusts_the_measurements():
    from types import SimpleNamespace

    from prunekit.hardware.target import _secant_ms

    pred = {0: 100.0, 10: 50.0, 20: 25.0}
    search = SimpleNamespace(records={10: {"speedup": 2.0}, 20: {"speedup": 4.0}},
                             predicted=pred.__getitem__)
    # relative times 1/2 and 1/4; 1/3 lies 2/3 of the way: 50 - 2/3 * 25
    assert _secant_ms(search, 10, 20, 3.0) == pytest.approx(100 / 3)
    assert _secant_ms(search, -1, 20, 2.0) == pytest.approx(100 - 2 / 3 * 75)  # prefix 0: 1x
    assert _secant_ms(search, 10, 20, 9.0) == pytest.approx(25.0)  # clamped to the bracket


def test_a_low_reading_does_not_send_the_search_to_the_path_end():
    """The first candidate reads no faster than dense (noise at batch 1): calibration
    pushes λ to its floor and the model can no longer reach the goal anywhere; the next
    step is bounded (twice the first candidate's uncalibrated speedup), not the floor."""
    base = fake_latency_fn(X, resnetish())
    dense_ms = base(resnetish())
    pruned_calls = []

    def fn(model):
        t = base(model)
        if abs(t - dense_ms) < 1e-9:
            return t
        pruned_calls.append(t)
        return dense_ms * 1.02 if len(pruned_calls) <= 2 else t  # first candidate: 0.98x

    res = _run(resnetish(), 2.0, latency_fn=fn, max_measurements=4, refine_measurements=0)
    first, *rest = res.speedup.search
    assert first["speedup"] < 1.0 and rest
    # before the bound: the next candidate was the path's end, 17.5x, and 5.8x was returned
    assert max(r["speedup"] for r in rest) < 5.0
    assert res.speedup.met and res.speedup.measured_speedup < 4.0
