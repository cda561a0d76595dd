"""Whether a measured-speedup target was met is said, with the spread of its rounds."""

from __future__ import annotations

import itertools

import pytest
import torch
from hw_helpers import fake_latency_fn, fake_layer_ms, resnetish

from prunekit.hardware.target import prune_to_speedup
from prunekit.hardware.verdict import measured_rounds, round_range, target_line
from prunekit.progress import stages

X = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))


def _noisy(fn, factors):
    """``fn`` with each reading scaled by the next factor: rounds that disagree."""
    factors = itertools.cycle(factors)
    return lambda model: fn(model) * next(factors)


def _run(target, factors=(1.0,), messages=None):
    latency_fn = _noisy(fake_latency_fn(X, resnetish()), factors)
    return prune_to_speedup(resnetish(), X, target, layer_timer=fake_layer_ms, round_to=8,
                            latency_fn=latency_fn, rounds=2,
                            progress=None if messages is None else messages.append)


def test_met_target_line_has_the_round_range():
    messages: list[str] = []
    res = _run(2.0, (1.0, 1.0, 1.05, 1.05), messages)
    dense_ms, pruned_ms = measured_rounds(res)
    assert len(dense_ms) == len(pruned_ms) == 2  # every reading of both rounds kept
    lo, hi = round_range(dense_ms, pruned_ms)
    assert lo <= res.speedup.measured_speedup <= hi
    line = target_line(res)
    assert line.startswith("target 2× faster met") or "met within noise" in line
    assert "range over 2 rounds" in line and "fewer MACs" in line
    assert messages[-1] == line  # the last progress message is the verdict


def test_missed_target_says_missed():
    res = _run(50.0)
    assert not res.speedup.met and "target 50× faster missed: measured" in target_line(res)


def test_round_range_validates():
    assert round_range([10.0, 12.0], [5.0, 4.0]) == (2.0, 3.0)
    with pytest.raises(ValueError, match="one dense and one pruned"):
        round_range([1.0], [])


def test_prune_prints_stages_and_verdict_with_progress(capsys, monkeypatch):
    import prunekit.hardware.target as target

    monkeypatch.setattr(target, "probe_widths", lambda *a, **k: pytest.fail("round_to given"))
    with stages(True) as say:
        prune_to_speedup(resnetish(), X, 2.0, layer_timer=fake_layer_ms, round_to=8, rounds=2,
                         latency_fn=fake_latency_fn(X, resnetish()), progress=say)
    err = capsys.readouterr().err
    assert "tracing groups" in err and "target 2× faster" in err
