"""Device signature, disk cache round trip and invalidation, width probe, rounding."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from prunekit.hardware.cache import CACHE_VERSION, DiskCache, cache_dir
from prunekit.hardware.probe import choose_multiple, penalties, probe_widths
from prunekit.hardware.rounding import round_width, width_levels
from prunekit.hardware.signature import DeviceSpec, device_signature, signature_key


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))


def test_signature_changes_with_threads_dtype_and_format():
    base = device_signature(DeviceSpec("cpu", 2))
    assert base["kind"] == "cpu" and base["threads"] == 2
    assert base["torch"] == torch.__version__
    keys = {signature_key(device_signature(s)) for s in (
        DeviceSpec("cpu", 2), DeviceSpec("cpu", 1), DeviceSpec("cpu", 2, torch.float64),
        DeviceSpec("cpu", 2, channels_last=True))}
    assert len(keys) == 4
    assert signature_key(base) == signature_key(device_signature(DeviceSpec("cpu", 2)))


@pytest.mark.parametrize("kwargs", [{"device": "meta"}, {"threads": 0}, {"threads": True},
                                    {"dtype": torch.int8}])
def test_device_spec_rejects_bad_fields(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DeviceSpec(**kwargs)


def test_cache_dir_follows_env(tmp_path):
    assert cache_dir() == tmp_path / "cache"


def test_cache_round_trip_and_invalidation():
    sig = device_signature(DeviceSpec("cpu", 2))
    cache = DiskCache.open("latency", sig)
    assert cache.entries == {}
    cache.entries["conv|x"] = 1.5
    cache.save()
    assert DiskCache.open("latency", sig).entries == {"conv|x": 1.5}
    # another signature (thread count) sees nothing: a different file
    assert DiskCache.open("latency", device_signature(DeviceSpec("cpu", 1))).entries == {}
    # a file whose stored signature or version does not match is ignored
    doc = json.loads(cache.path.read_text())
    doc["signature"]["torch"] = "0.0.0"
    cache.path.write_text(json.dumps(doc))
    assert DiskCache.open("latency", sig).entries == {}
    doc["signature"], doc["version"] = sig, CACHE_VERSION + 1
    cache.path.write_text(json.dumps(doc))
    assert DiskCache.open("latency", sig).entries == {}
    cache.path.write_text("{not json")
    assert DiskCache.open("latency", sig).entries == {}


def test_cache_without_persist_writes_nothing():
    cache = DiskCache.open("latency", {"kind": "cpu"}, persist=False)
    cache.entries["a"] = 1.0
    cache.save()
    assert not cache.path.exists()


def _staircase(tile):
    # a kernel that pads widths to `tile`: w and ceil(w/tile)*tile cost the same
    return lambda op, w: (2.0 if op == "conv3x3" else 1.0) * math.ceil(w / tile) * tile


def test_penalty_is_relative_to_the_fitted_line():
    line = {w: 2.0 + 0.5 * w for w in range(8, 40)}
    assert all(p == pytest.approx(1.0) for p in penalties(line).values())
    stairs = penalties({w: float(math.ceil(w / 8) * 8) for w in range(8, 40)})
    assert all(stairs[w] < 1.0 for w in (16, 24, 32))
    assert all(stairs[w] > 1.0 for w in (9, 17, 25, 33))


@pytest.mark.parametrize("tile", [8, 16, 32])
def test_probe_finds_the_tile_and_caches_it(tile):
    calls = []

    def timer(op, w):
        calls.append((op, w))
        return _staircase(tile)(op, w)

    prof = probe_widths(DeviceSpec("cpu", 2), lo=96, hi=160, timer=timer)
    assert prof.multiple == tile and not prof.cached
    assert len(calls) == 2 * 65
    assert all(prof.scores[m] < 0.85 * prof.scores[tile] for m in prof.scores if m < tile)

    def boom(op, w):
        raise AssertionError("cached probe must not time again")

    again = probe_widths(DeviceSpec("cpu", 2), lo=96, hi=160, timer=boom)
    assert again.cached and again.multiple == tile and again.scores == prof.scores
    # a different signature re-probes
    other = probe_widths(DeviceSpec("cpu", 1), lo=96, hi=160, timer=_staircase(16))
    assert not other.cached and other.multiple == 16


def test_smooth_or_noisy_timings_give_multiple_one():
    times = {"linear": {w: 1.0 + w * 1e-3 for w in range(96, 161)}}
    assert choose_multiple(times)[0] == 1
    gen = torch.Generator().manual_seed(0)
    noise = (1 + 0.01 * torch.randn(65, generator=gen)).tolist()
    noisy = {"conv3x3": {w: (5.0 + w) * noise[w - 96] for w in range(96, 161)}}
    assert choose_multiple(noisy)[0] == 1


def test_probe_rejects_bad_range():
    with pytest.raises(ValueError, match="lo"):
        probe_widths(lo=10, hi=10, timer=_staircase(8), use_cache=False)


@pytest.mark.parametrize(("width", "n", "multiple", "lower", "expected"), [
    (50, 64, 16, 1, 48), (64, 64, 16, 1, 64), (70, 64, 16, 1, 64), (10, 64, 16, 1, 16),
    (33, 100, 8, 1, 32), (99, 100, 8, 1, 96), (5, 7, 8, 1, 7), (20, 64, 16, 20, 32),
    (1, 24, 8, 1, 8),
])
def test_round_width(width, n, multiple, lower, expected):
    assert round_width(width, n, multiple, lower) == expected


def test_width_levels_examples():
    assert width_levels(64, 16) == [64, 48, 32, 16]
    assert width_levels(100, 8, levels=4) == [100, 72, 48, 24]
    assert width_levels(7, 8) == [7]
    with pytest.raises(ValueError, match="levels"):
        width_levels(64, 8, levels=0)
    with pytest.raises(ValueError, match="lower"):
        width_levels(8, 8, lower=9)


@given(st.integers(1, 4096), st.sampled_from([1, 2, 8, 16, 64]), st.integers(1, 64),
       st.integers(1, 32))
def test_width_levels_invariants(n, multiple, lower, levels):
    lower = min(lower, n)
    out = width_levels(n, multiple, lower, levels)
    assert out[0] == n
    assert all(a > b for a, b in zip(out, out[1:]))
    assert all(w % multiple == 0 and w >= lower for w in out[1:])
    assert len(out) <= levels


def test_a_candidate_needs_three_multiples_in_the_range():
    times = {"conv3x3": {w: 5.0 + w for w in range(96, 161)}}
    times["conv3x3"][128] = 1.0  # one lucky width must not decide "64"
    multiple, gains = choose_multiple(times)
    assert 64 not in gains and multiple != 64
