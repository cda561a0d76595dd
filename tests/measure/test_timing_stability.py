"""Timings that are stable or say they are not: re-timing, bimodal samples, speedup intervals.

Every duration here comes from a virtual clock that the model's forward pass advances by a
scripted amount, so the tests check behaviour on chosen samples, never wall-clock time.
"""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prunekit.measure import compare, latency
from prunekit.measure.comparison import Retiming, speedup_interval
from prunekit.measure.timing import STABLE_SPREAD, bimodal_split, merge_latency

X = torch.zeros(4, 3)


class Clock:
    """Seconds, advanced only by :class:`Scripted` forward passes."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Scripted(nn.Module):
    """Each forward pass takes the next scripted number of milliseconds on ``clock``."""

    def __init__(self, clock: Clock, durations_ms) -> None:
        super().__init__()
        self.clock, self.durations = clock, iter(durations_ms)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.now += next(self.durations) / 1e3
        self.calls += 1
        return x


def _time(durations, **kwargs):
    clock = Clock()
    model = Scripted(clock, durations)
    return latency(model, X, threads=None, timer=clock, **kwargs), model


def test_samples_are_the_scripted_durations_and_warmup_is_untimed():
    stats, model = _time([99.0, 10.0, 11.0, 12.0], warmup=1, repeats=3)
    assert stats.samples_ms == pytest.approx([10.0, 11.0, 12.0])
    assert model.calls == 4 and stats.rounds == 1
    assert stats.spread == pytest.approx(stats.iqr_ms / stats.median_ms)
    assert stats.max_spread == STABLE_SPREAD and stats.stable and not stats.bimodal


def test_without_max_spread_a_noisy_timing_is_flagged_not_retimed():
    stats, _ = _time(itertools.cycle([5.0, 15.0]), warmup=0, repeats=6)
    assert len(stats.samples_ms) == 6
    assert not stats.stable and stats.spread > STABLE_SPREAD
    assert stats.notes == []  # nothing was attempted; the flag says it


def test_retimes_until_stable_and_keeps_every_sample():
    noisy = [9.0, 11.0, 9.0, 11.0, 8.0, 12.0]  # first block: IQR/median 0.2
    steady = itertools.repeat(10.0)  # later blocks: one value, pulling the spread down
    stats, _ = _time(itertools.chain(noisy, steady), warmup=0, repeats=6, max_spread=0.1)
    assert stats.stable and stats.rounds > 1
    assert stats.samples_ms[:6] == pytest.approx(noisy)  # nothing dropped
    assert len(stats.samples_ms) == 6 * stats.rounds
    assert stats.spread <= 0.1 and not stats.notes


def test_retiming_stops_at_the_pass_cap_and_says_so():
    stats, _ = _time(itertools.cycle([5.0, 15.0]), warmup=0, repeats=4, max_spread=0.1,
                     max_repeats=10)
    assert len(stats.samples_ms) == 10 and stats.rounds == 3  # 4 + 4 + 2
    assert not stats.stable
    assert any("unstable after 10 passes" in n and "IQR/median" in n for n in stats.notes)


def test_retiming_stops_at_the_time_cap():
    stats, _ = _time(itertools.cycle([500.0, 1500.0]), warmup=0, repeats=4, max_spread=0.1,
                     max_seconds=5.0)
    # 4 passes = 4 s of timed passes < 5 s: one more block, then 8 s >= 5 s: stop
    assert len(stats.samples_ms) == 8 and not stats.stable


@pytest.mark.parametrize("kwargs, field", [
    ({"max_spread": 0}, "max_spread"), ({"max_spread": True}, "max_spread"),
    ({"max_repeats": 2}, "max_repeats"), ({"max_seconds": 0}, "max_seconds"),
    ({"max_seconds": float("inf")}, "max_seconds"),
])
def test_retiming_options_are_validated(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _time(itertools.repeat(1.0), warmup=0, repeats=3, **kwargs)


def test_bimodal_samples_are_flagged_with_their_clusters():
    # the case: passes split between ~2 ms and ~176 ms (a descheduled thread)
    samples = [2.0, 2.1, 1.9, 176.0, 2.2, 175.0, 2.0, 177.0, 2.05, 176.5]
    stats, _ = _time(iter(samples), warmup=0, repeats=10)
    assert stats.bimodal and not stats.stable
    low, high = stats.clusters
    assert (low["count"], high["count"]) == (6, 4)
    assert low["median_ms"] == pytest.approx(2.025) and high["median_ms"] == pytest.approx(176.25)


@pytest.mark.parametrize("samples, split", [
    ([1.0, 1.0, 1.0, 2.0, 2.0, 2.0], 3),            # two tight clusters, 100 % apart
    ([10.0] * 9 + [30.0], None),                    # one slow outlier is not a mode
    ([10.0] * 8 + [30.0, 31.0], 8),                 # two slow passes of ten are
    ([1.0 + 0.01 * i for i in range(50)], None),    # wide but continuous
    ([5.0], None), ([], None),
])
def test_bimodal_split_examples(samples, split):
    assert bimodal_split(samples) == split


@settings(max_examples=60, deadline=None)
@given(base=st.floats(0.01, 1e4), noise=st.lists(st.floats(0, 0.1), min_size=3, max_size=80))
def test_unimodal_noise_within_ten_percent_is_never_bimodal(base, noise):
    assert bimodal_split([base * (1 + e) for e in noise]) is None


@settings(max_examples=60, deadline=None)
@given(base=st.floats(0.01, 1e4), ratio=st.floats(1.4, 100.0),
       low=st.lists(st.floats(0, 0.05), min_size=2, max_size=40),
       high=st.lists(st.floats(0, 0.05), min_size=2, max_size=40))
def test_two_separated_clusters_are_always_found(base, ratio, low, high):
    lows, highs = [base * (1 + e) for e in low], [base * ratio * (1 + e) for e in high]
    n = len(lows) + len(highs)
    if min(len(lows), len(highs)) < max(2, 0.1 * n):
        return  # a cluster this small is an outlier by definition
    assert bimodal_split(lows + highs) == len(lows)


def _compare(dense_ms, pruned_ms, **kwargs):
    clock = Clock()
    dense, pruned = Scripted(clock, dense_ms), Scripted(clock, pruned_ms)
    options = {"repeats": 8, "rounds": 4, "warmup": 0, "measure_memory": False,
               "measure_energy": False, "threads": None, "timer": clock, **kwargs}
    return compare(dense, pruned, X, **options)


def test_compare_clear_speedup_has_an_interval_above_one():
    c = _compare(itertools.cycle([10.0, 10.3, 9.8, 10.1]), itertools.cycle([5.0, 5.2, 4.9]))
    lo, hi = c.speedup_interval
    assert 1 < lo <= c.measured_speedup <= hi
    assert c.speedup_verdict == "faster" and c.timing_stable
    assert c.latency_dense.rounds == 4  # stable at once: no re-timing
    payload = c.to_dict()
    assert payload["measured_speedup_interval"] == pytest.approx([lo, hi])
    assert payload["speedup_verdict"] == "faster" and payload["timing_stable"] is True


def test_compare_same_speed_is_no_measurable_difference():
    c = _compare(itertools.cycle([9.0, 10.0, 11.0, 12.0]), itertools.cycle([12.0, 9.5, 10.5]),
                 max_spread=None)
    lo, hi = c.speedup_interval
    assert lo < 1 < hi and c.speedup_verdict == "no measurable difference"


def test_compare_retimes_a_bimodal_side_up_to_the_round_cap():
    c = _compare(itertools.repeat(10.0), itertools.cycle([2.0, 2.0, 176.0]), max_rounds=8)
    assert c.latency_pruned.bimodal and not c.timing_stable
    assert c.latency_dense.rounds == c.latency_pruned.rounds == 8
    assert len(c.latency_pruned.samples_ms) == 8 * 2  # every reading kept
    assert any("unstable" in n and "bimodal" in n for n in c.latency_pruned.notes)


def test_compare_without_retiming_times_exactly_the_rounds():
    c = _compare(itertools.cycle([5.0, 15.0]), itertools.cycle([5.0, 15.0]), max_spread=None)
    assert c.latency_dense.rounds == 4 and len(c.latency_dense.samples_ms) == 8
    assert not c.timing_stable and not c.latency_dense.notes


def test_retiming_config_is_validated():
    with pytest.raises(ValueError, match="max_rounds"):
        Retiming(max_rounds=0)
    with pytest.raises(ValueError, match="max_spread"):
        Retiming(max_spread=-1)


def test_speedup_interval_is_seeded_and_brackets_the_ratio_of_medians():
    dense, pruned = [10.0, 11.0, 9.5, 10.2, 10.8], [5.0, 5.5, 4.8, 5.1]
    assert speedup_interval(dense, pruned) == speedup_interval(dense, pruned)
    lo, hi = speedup_interval(dense, pruned)
    assert lo <= 10.2 / 5.05 <= hi
    assert speedup_interval([2.0], [1.0]) == pytest.approx((2.0, 2.0))
    with pytest.raises(ValueError, match="samples"):
        speedup_interval([], [1.0])


def test_merge_latency_judges_against_the_given_bound():
    parts = [_time(itertools.cycle([9.0, 11.0]), warmup=0, repeats=4)[0] for _ in range(2)]
    assert merge_latency(parts, max_spread=0.5).stable
    assert not merge_latency(parts, max_spread=0.05).stable
    assert merge_latency(parts).rounds == 2


@pytest.mark.parametrize("max_seconds, rounds", [(5.0, 2), (100.0, 6)])
def test_compare_stops_retiming_at_the_time_cap(max_seconds, rounds):
    noisy = itertools.cycle([500.0, 1500.0])  # 1 s per pass on average, never stable
    c = _compare(noisy, itertools.cycle([500.0, 1500.0]), rounds=2, repeats=4,
                 max_seconds=max_seconds)
    # two first rounds = 8 passes = 8 s: over a 5 s cap no more rounds; else up to 3 × 2
    assert c.latency_dense.rounds == rounds and not c.timing_stable


def test_later_rounds_warm_up_once():
    clock = Clock()
    dense, pruned = Scripted(clock, itertools.repeat(1.0)), Scripted(clock, itertools.repeat(1.0))
    compare(dense, pruned, X, repeats=8, rounds=4, warmup=5, max_spread=None, threads=None,
            measure_memory=False, measure_energy=False, timer=clock)
    counting = dense.calls - 1  # count_macs runs one forward pass
    assert counting == 5 + 3 * 1 + 8  # first block 5 warm-ups, later blocks 1; 8 timed
