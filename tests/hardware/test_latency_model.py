"""Layer profiling, rebuilt layers, cached per-layer timings and the latency prediction."""

from __future__ import annotations

import pytest
import torch
from hw_helpers import fake_latency_fn, fake_layer_ms, resnetish
from torch import nn

from prunekit.graph import build_groups
from prunekit.hardware.latency_model import LatencyModel
from prunekit.hardware.layers import profile_layers, rebuild
from prunekit.hardware.signature import DeviceSpec
from prunekit.surgery import remove_channels

X = torch.randn(1, 3, 16, 16)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))


def test_profile_layers_records_what_ran():
    layers = profile_layers(resnetish(), X)
    names = [la.name for la in layers]
    assert names == ["stem.0", "a.0", "b.0", "dw.0", "mid.0", "head.2", "head.4"]
    by = {la.name: la for la in layers}
    assert by["dw.0"].depthwise and not by["a.0"].depthwise
    assert by["a.0"].in_shape == (1, 64, 16, 16) and by["a.0"].n_out == 128
    assert by["head.2"].in_shape == (1, 192) and by["head.2"].kind == "linear"
    assert by["a.0"].out_numel == 128 * 16 * 16


@pytest.mark.parametrize(("name", "cin", "cout"), [("a.0", 24, 40), ("dw.0", 16, 16),
                                                    ("head.2", 40, 72)])
def test_rebuilt_layer_has_the_asked_widths(name, cin, cout):
    layer = {la.name: la for la in profile_layers(resnetish(), X)}[name]
    module, x = rebuild(layer, cin, cout)
    out = module(x)
    assert x.shape[1 if layer.kind == "conv" else -1] == cin
    assert out.shape[1 if layer.kind == "conv" else -1] == cout
    if layer.depthwise:
        assert module.groups == cout


def test_equal_layers_share_a_key_and_widths_change_it():
    layer = profile_layers(resnetish(), X)[1]
    assert layer.key(16, 32) == layer.key(16, 32) != layer.key(16, 40) != layer.key(24, 32)


def _model(dense_ms: float, timer=fake_layer_ms) -> LatencyModel:
    return LatencyModel.build(resnetish(), X, DeviceSpec("cpu", 2), dense_ms, timer)


def test_rest_is_the_measured_remainder_and_dense_prediction_is_exact():
    lm = _model(100.0)
    layers_dense = sum(fake_layer_ms(la, la.n_in, la.n_out) for la in lm.layers)
    assert lm.rest_ms == pytest.approx(100.0 - layers_dense)
    assert lm.predict(lm.dense_widths()) == pytest.approx(100.0)
    assert lm.timed == len(lm.layers)


def test_prediction_uses_cached_entries_only():
    _model(100.0).flush()  # first model times every dense layer and saves them

    def boom(layer, cin, cout):
        raise AssertionError("a cached layer was timed again")

    again = _model(100.0, boom)
    assert again.timed == 0
    assert again.predict(again.dense_widths()) == pytest.approx(100.0)
    widths = again.dense_widths()
    widths["a.0"] = (32, 48)
    with pytest.raises(AssertionError, match="timed again"):
        again.predict(widths)  # a new width is a cache miss: it must be measured


def test_prediction_matches_a_cut_model_after_calibration():
    model = resnetish()
    dense_fn = fake_latency_fn(X, resnetish(), beta=0.3)
    slow = lambda la, cin, cout: 1.7 * fake_layer_ms(la, cin, cout)  # noqa: E731
    lm = LatencyModel.build(model, X, DeviceSpec("cpu", 2), dense_fn(model), slow,
                            use_cache=False)
    # layers timed alone add up to more than the model: scaled down so the rest is >= 0
    assert lm.scale < 1.0 and lm.rest_ms == pytest.approx(0.0, abs=1e-9)
    assert lm.predict(lm.dense_widths()) == pytest.approx(lm.dense_ms)
    gs = build_groups(model, X)
    plans = [{"a.0": list(range(48)), "head.2": list(range(128))},
             {"stem.0": list(range(16)), "mid.0": list(range(64))}]
    cut = []
    for removal in plans:
        m = resnetish()
        remove_channels(m, gs, removal, X)
        cut.append(({la.name: (la.n_in, la.n_out) for la in profile_layers(m, X)},
                    dense_fn(m)))
    assert lm.predict(cut[0][0]) != pytest.approx(cut[0][1], rel=0.02)
    lm.calibrate(*cut[0])
    assert lm.predict(cut[0][0]) == pytest.approx(cut[0][1])
    assert lm.predict(cut[1][0]) == pytest.approx(cut[1][1], rel=0.10)  # another plan
    assert lm.predict(lm.dense_widths()) == pytest.approx(lm.dense_ms)


def test_layers_alone_slower_than_the_model_give_a_scale_below_one():
    lm = _model(5.0)  # the fake layers add up to more than 5 ms
    assert lm.scale < 1.0 and lm.rest_ms == pytest.approx(0.0, abs=1e-9)
    assert lm.predict(lm.dense_widths()) == pytest.approx(5.0)


def _cut_widths(removals, x=X):
    gs = build_groups(resnetish(), x)
    out = []
    for removal in removals:
        m = resnetish()
        remove_channels(m, gs, removal, x)
        out.append(({la.name: (la.n_in, la.n_out) for la in profile_layers(m, x)}, m))
    return out


def test_two_measurements_fit_the_fixed_share_of_the_rest():
    """Truth: rest mostly per-op overhead (β = 0.9), layers timed alone 1.3x slow. One
    measurement (β kept at its 0.2 prior) leaves a third plan mispredicted; two fit β and
    λ and predict it exactly."""
    numel = sum(la.out_numel for la in profile_layers(resnetish(), X))

    def true_ms(model):  # a rest as large as the layers, 90 % of it fixed (batch 1)
        layers = profile_layers(model, X)
        act = sum(la.out_numel for la in layers) / numel
        return sum(fake_layer_ms(la, la.n_in, la.n_out) for la in layers) + \
            10.0 * (0.9 + 0.1 * act)

    slow = lambda la, cin, cout: 1.3 * fake_layer_ms(la, cin, cout)  # noqa: E731
    lm = LatencyModel.build(resnetish(), X, DeviceSpec("cpu", 2), true_ms(resnetish()), slow,
                            use_cache=False)
    plans = _cut_widths([{"a.0": list(range(8))},
                         {"stem.0": list(range(16)), "mid.0": list(range(48))},
                         {"a.0": list(range(48)), "stem.0": list(range(24)),
                          "mid.0": list(range(80)), "head.2": list(range(96))}])
    (w1, m1), (w2, m2), (w3, m3) = [(w, true_ms(m)) for w, m in plans]
    lm.calibrate(w1, m1)
    assert lm.beta == pytest.approx(0.2) and lm.predict(w1) == pytest.approx(m1)
    one_error = abs(lm.predict(w3) / m3 - 1)
    lm.calibrate(w2, m2)
    assert lm.beta == pytest.approx(0.9)
    assert lm.scale == pytest.approx(1 / 1.3)
    assert lm.predict(w3) == pytest.approx(m3, rel=1e-6)
    assert one_error > 0.02  # the one-point fit was measurably off
    assert lm.predict(lm.dense_widths()) == pytest.approx(lm.dense_ms)


class TinyViT(nn.Module):
    """Tokens -> nn.MultiheadAttention (projections called functionally) -> MLP -> head."""

    def __init__(self, e: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(8, e)
        self.attn = nn.MultiheadAttention(e, 4, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(e, 32), nn.GELU(), nn.Linear(32, e))
        self.head = nn.Linear(e, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        return self.head((h + self.mlp(h)).mean(1))


def test_multihead_attention_projections_are_timed_layers():
    torch.manual_seed(0)
    model, x = TinyViT().eval(), torch.randn(2, 5, 8)
    by = {la.name: la for la in profile_layers(model, x)}
    assert set(by) == {"embed", "attn.in_proj", "attn.out_proj", "mlp.0", "mlp.2", "head"}
    inp, out = by["attn.in_proj"], by["attn.out_proj"]
    assert (inp.weight, inp.n_in, inp.n_out, inp.in_shape) == ("attn.in_proj_weight", 16, 48,
                                                               (2, 5, 16))
    assert (out.weight, out.n_in, out.n_out, out.out_numel) == ("attn.out_proj.weight", 16, 16,
                                                                2 * 5 * 16)
    module, xin = rebuild(inp, 12, 36)
    assert module(xin).shape == (2, 5, 36)
    # the group that cuts head-dim columns removes 3 in_proj rows per channel: the latency
    # model sees the projection shrink
    lm = LatencyModel.build(model, x, DeviceSpec("cpu", 1), 10.0, fake_layer_ms, use_cache=False)
    assert {la.weight for la in lm.layers} >= {"attn.in_proj_weight", "attn.out_proj.weight"}
    widths = lm.dense_widths()
    widths["attn.in_proj"] = (16, 24)
    assert lm.predict(widths) < lm.predict(lm.dense_widths())
