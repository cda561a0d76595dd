"""Strided max pooling: the same values as nn.MaxPool2d; replaced only where measured faster."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prunekit.hardware.pooling import StridedMaxPool2d, replace_max_pool


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 4), s=st.integers(1, 4), p=st.integers(0, 2), h=st.integers(4, 13),
       w=st.integers(4, 13), seed=st.integers(0, 2**16), batched=st.booleans())
def test_equals_max_pool2d(k, s, p, h, w, seed, batched):
    p = min(p, k // 2)  # nn.MaxPool2d's own limit
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((2, 3, h, w) if batched else (3, h, w), generator=g)
    x[x > 1.5] = 0.0  # ties
    if h >= k and w >= k:
        torch.testing.assert_close(StridedMaxPool2d(k, s, p)(x), nn.MaxPool2d(k, s, p)(x),
                                   rtol=0, atol=0)


def test_rectangular_kernels_nan_and_inf_propagate_like_max_pool2d():
    x = torch.randn(1, 2, 9, 10)
    x[0, 0, 3, 4], x[0, 1, 0, 0], x[0, 1, 5, 5] = float("nan"), float("-inf"), float("inf")
    for k, s, p in (((2, 3), (1, 2), (1, 0)), ((3, 2), (2, 2), (0, 1)), (2, 2, 0)):
        torch.testing.assert_close(StridedMaxPool2d(k, s, p)(x), nn.MaxPool2d(k, s, p)(x),
                                   rtol=0, atol=0, equal_nan=True)


def test_gradients_flow_without_in_place_errors():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    StridedMaxPool2d(3, 2, 1)(x).sum().backward()
    assert x.grad is not None and x.grad.sum() == pytest.approx(2 * 3 * 4 * 4)


def test_bad_arguments_and_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="padding"):
        StridedMaxPool2d(2, 2, 2)
    with pytest.raises(ValueError, match=">= 1"):
        StridedMaxPool2d(0)
    with pytest.raises(ValueError, match="3-D or 4-D"):
        StridedMaxPool2d(2)(torch.randn(8, 8))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        StridedMaxPool2d(5)(torch.randn(1, 1, 3, 3))


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.MaxPool2d(1)),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 3)).eval()


def test_replace_where_measured_faster_keeps_outputs_and_reports(monkeypatch):
    import prunekit.hardware.pooling as pooling

    def fake_ms(m, x, threads, repeats):  # strided: 4x faster for the 2x2 pool, slower for 1x1
        if isinstance(m, StridedMaxPool2d):
            return 1.0 if m.kernel_size == (2, 2) else 9.0
        return 4.0

    monkeypatch.setattr(pooling, "_min_ms", fake_ms)
    model, x = net(), torch.randn(4, 1, 19, 19)
    want = model(x)
    report = replace_max_pool(model, x)
    assert report["replaced"] == ["2"] and isinstance(model[2], StridedMaxPool2d)
    assert report["skipped"] == ["3.0 (ceil_mode=True)"]
    assert report["kept"] == ["3.1 (4.000 ms vs 9.000 ms strided)"]
    assert type(model[3][1]) is nn.MaxPool2d and report["ms"]["2"] == [4.0, 1.0]
    torch.testing.assert_close(model(x), want, rtol=0, atol=0)


def test_replace_for_real_leaves_values_unchanged_and_rejects_a_bad_gain():
    model, x = net(), torch.randn(4, 1, 19, 19)
    want = model(x)
    report = replace_max_pool(model, x, threads=1, repeats=3)
    assert set(report["replaced"]) | {k.split(" ")[0] for k in report["kept"]} == {"2", "3.1"}
    torch.testing.assert_close(model(x), want, rtol=0, atol=0)
    with pytest.raises(ValueError, match="min_gain"):
        replace_max_pool(net(), x, min_gain=1.0)


def test_a_pool_the_inputs_do_not_reach_is_skipped():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.MaxPool2d(2), nn.MaxPool2d(2)

        def forward(self, x):
            return self.used(x)

    report = replace_max_pool(Branchy(), torch.randn(1, 1, 8, 8), repeats=2)
    assert report["skipped"] == ["unused (not reached by the inputs)"]


def test_a_model_with_strided_pools_can_still_be_pruned():
    """The graph traces through the strided views: channels stay coupled across the pool."""
    import prunekit

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), StridedMaxPool2d(2),
                          nn.Conv2d(8, 8, 3), nn.ReLU(), StridedMaxPool2d(3, 2, 1),
                          nn.Flatten(), nn.Linear(8 * 2 * 2, 3)).eval()
    x = torch.randn(2, 1, 12, 12)
    res = prunekit.prune(model, x, ratio=0.5)
    assert model[0].out_channels == 4 and model[3].in_channels == 4
    assert model[7].in_features == model[3].out_channels * 4
    assert res.macs_after < res.macs_before and model(x).shape == (2, 3)


def fake_timer(calls, fail_after=None):
    """``pooling._min_ms`` stand-in: nn.MaxPool2d 9 ms, the strided form 1 ms; raises
    after ``fail_after`` calls."""

    def timer(m, x, threads, repeats):
        calls.append(m)
        if fail_after is not None and len(calls) > fail_after:
            raise RuntimeError("timer broke")
        return 9.0 if isinstance(m, nn.MaxPool2d) else 1.0

    return timer


def test_a_shared_pool_is_swapped_everywhere_and_the_model_itself_is_skipped(monkeypatch):
    import prunekit.hardware.pooling as pooling

    monkeypatch.setattr(pooling, "_min_ms", fake_timer([]))
    pool = nn.MaxPool2d(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), pool, nn.Conv2d(2, 2, 3, padding=1),
                          pool).eval()
    x = torch.randn(1, 1, 8, 8)
    want = model(x)
    assert replace_max_pool(model, x)["replaced"] == ["1"]
    assert isinstance(model[1], StridedMaxPool2d) and model[1] is model[3]
    torch.testing.assert_close(model(x), want, rtol=0, atol=0)
    assert replace_max_pool(nn.MaxPool2d(2), x)["skipped"] == [
        " (the model itself (wrap it in a module))"]


def test_a_failed_timing_changes_nothing(monkeypatch):
    import prunekit.hardware.pooling as pooling

    monkeypatch.setattr(pooling, "_min_ms", fake_timer([], fail_after=2))
    two = nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2)).eval()
    with pytest.raises(RuntimeError, match="timer broke"):
        replace_max_pool(two, torch.randn(1, 1, 8, 8))
    assert all(type(m) is nn.MaxPool2d for m in two)  # the first pool was not swapped either
