"""Depth to a measured speedup: the block count is found in a few timings (injected timers)."""

from __future__ import annotations

import pytest
import torch
from support import ConvResidual
from torch import nn

from prunekit.hardware.depth_search import (
    _fit_beta,
    depth_to_speedup,
    retime,
)
from prunekit.structures.units import find_units

X = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def deep(n: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Sequential(
        *[ConvResidual(16) for _ in range(n)]), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 5)).eval()


def kernels(model: nn.Module) -> float:
    return float(sum(isinstance(m, nn.Conv2d) for m in model.modules()))


def counting(fn):
    calls: list[int] = []

    def wrapped(model):
        calls.append(1)
        return fn(model)

    return wrapped, calls


def truth(n: int, fn, target: float) -> int:
    """Fewest blocks whose removal meets the target, by timing every count."""
    dense = fn(deep(n))
    return next(k for k in range(1, n + 1) if dense / (dense - k) >= target)


def test_a_residual_units_macs_are_its_blocks_macs():
    units = {u.name: u for u in find_units(deep(4), X)}
    # the stage "1" is residual too, but its blocks are the finer units
    assert sorted(units) == [f"1.{i}" for i in range(4)]
    assert {u.kind for u in units.values()} == {"depth"}
    assert [units[f"1.{i}"].macs for i in range(4)] == [16 * 16 * 9 * 64] * 4


def test_time_proportional_to_macs_is_found_with_one_measurement():
    model = deep()
    fn, calls = counting(kernels)
    row = depth_to_speedup(model, X, 2.0, fn, rounds=1)
    assert len(row["measured"]) == 1 and len(calls) == 2  # one ABBA round: dense + cut
    assert 2.0 <= row["measured_speedup"] <= 2.2
    assert row["blocks_removed"] == truth(16, kernels, 2.0)
    assert len(model[1]) == 16 and len(row["model"][1]) == 16 - row["blocks_removed"]


def test_fixed_overhead_is_learned_from_the_first_measurement():
    # 10 ms the blocks do not touch: the MAC share alone predicts too much; β is refitted
    def overhead(m):
        return 10.0 + kernels(m)

    row = depth_to_speedup(deep(), X, 1.5, overhead, rounds=1)
    assert len(row["measured"]) <= 3  # timing every count would take 9
    assert 1.5 <= row["measured_speedup"] <= 1.65
    assert row["blocks_removed"] >= truth(16, overhead, 1.5)
    assert row["measured"][0]["predicted_speedup"] > row["measured"][0]["speedup"]


def test_unreachable_target_returns_the_fastest_cut_that_runs():
    # removing all six blocks would empty their container: five is the most that can go
    row = depth_to_speedup(deep(6), X, 20.0, kernels, rounds=1)
    assert row["blocks_removed"] == 5 and row["measured_speedup"] < 20.0


def test_no_blocks_no_candidate():
    flat = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    flat(X)
    assert depth_to_speedup(flat.eval(), X, 2.0, kernels) is None


def test_beta_fit_is_exact_and_clamped():
    assert _fit_beta(0.5 + 0.5 * 0.4, 0.4) == pytest.approx(0.5)
    assert _fit_beta(0.99, 0.0) == pytest.approx(0.95)
    assert _fit_beta(0.1, 0.9) == -1.0
    assert _fit_beta(0.7, 1.0) == 0.0


def test_a_near_miss_is_timed_again_and_averaged():
    # five of six blocks removed (all six would empty the container): 7 -> 2 kernels,
    # truly 3.5x; its first timing reads 10 % slow (a noisy neighbour): 3.18x < 3.3x
    seen: list[int] = []

    def noisy(m):
        k = kernels(m)
        if k < 7:
            seen.append(1)
            return k * (1.1 if len(seen) == 1 else 1.0)
        return k

    row = depth_to_speedup(deep(6), X, 3.3, noisy, rounds=1)
    assert row["blocks_removed"] == 5
    first, second = row["readings"]
    assert first == pytest.approx(7 / 2.2) and second == pytest.approx(3.5)
    assert row["measured_speedup"] == pytest.approx((7 / 2.2 + 3.5) / 2)  # 3.34x
    assert row["measured_speedup"] >= 3.3


def test_a_clear_miss_is_not_timed_again():
    fn, calls = counting(kernels)
    row = depth_to_speedup(deep(6), X, 20.0, fn, rounds=1)
    assert "readings" not in row and len(calls) == 2 * len(row["measured"])


def test_retime_takes_the_median_of_the_readings():
    model = deep(4)
    row = depth_to_speedup(model, X, 1.2, kernels, rounds=1)
    readings = iter([1.0, 2.0])  # two more readings: dense 1 ms vs cut 1 ms, then 2 ms

    def fake(m):
        return 1.0 if m is model else 1.0 / next(readings)

    first = row["measured_speedup"]
    retime(model, row, fake, rounds=1, times=2)
    assert row["readings"] == [first, 1.0, 2.0]
    assert row["measured_speedup"] == sorted([first, 1.0, 2.0])[1]
