"""One way to write timings and speedups: sensible units, no exponents, honest verdicts."""

import pytest

from prunekit.measure.display import (
    format_latency,
    format_ms,
    format_speedup,
    format_target,
    speedup_verdict,
)


@pytest.mark.parametrize("ms, text", [
    (2040.0, "2.04 s"), (783.0, "783 ms"), (1090.4, "1.09 s"), (12.34, "12.3 ms"),
    (1.0, "1.00 ms"), (0.412, "412 µs"), (0.0004, "400 ns"), (999.7, "1.00 s"),
    (65_000.0, "65.0 s"), (3_600_000.0, "3600 s"), (0.0, "0 ms"), (None, "—"),
])
def test_format_ms(ms, text):
    assert format_ms(ms) == text


def test_format_latency_median_and_iqr_in_one_unit():
    stats = {"median_ms": 783.0, "p25_ms": 560.0, "p75_ms": 1090.0, "spread": 0.1,
             "max_spread": 0.1}
    assert format_latency(stats) == "783 ms (IQR 560–1090 ms)"


def test_format_latency_across_units_and_flags():
    stats = {"median_ms": 0.7, "p25_ms": 0.237, "p75_ms": 68.0, "spread": 96.8,
             "max_spread": 0.1, "bimodal": True,
             "clusters": [{"median_ms": 0.238, "count": 43}, {"median_ms": 68.0, "count": 41}]}
    text = format_latency(stats)
    assert text.startswith("700 µs (IQR 237 µs–68.0 ms)")
    assert "bimodal: 43× near 238 µs, 41× near 68.0 ms" in text
    assert "unstable: IQR/median 96.8× > 10 %" in text
    assert "e+" not in text and format_latency(stats, flags=False).endswith("68.0 ms)")


def test_format_latency_old_report_without_new_fields():
    assert format_latency({"median_ms": 2040.0, "iqr_ms": 310.0}) == "2.04 s"
    assert format_latency(None) == "—"


@pytest.mark.parametrize("speedup, interval, text", [
    (1.37, (1.21, 1.52), "1.37× faster (95 % CI 1.21–1.52×)"),
    (0.104, (0.02, 9.7), "no measurable difference (95 % CI 0.0200–9.70×)"),
    (1.05, (0.97, 1.13), "no measurable difference (95 % CI 0.970–1.13×)"),
    (0.8, (0.75, 0.85), "0.800×, slower (95 % CI 0.750–0.850×)"),
    (1.4, None, "1.40× (no interval recorded)"),
    (None, None, "—"),
])
def test_format_speedup_never_calls_noise_a_speedup(speedup, interval, text):
    assert format_speedup(speedup, interval) == text


def test_speedup_verdict():
    assert speedup_verdict(2.0, (1.5, 2.5)) == "faster"
    assert speedup_verdict(2.0, (0.9, 2.5)) == "no measurable difference"
    assert speedup_verdict(0.5, (0.4, 0.6)) == "slower"
    assert speedup_verdict(None, None) == "unknown"


@pytest.mark.parametrize("speedup, interval, word", [
    (2.13, (2.05, 2.2), "met"), (2.05, (1.9, 2.2), "met within noise"),
    (1.62, (1.5, 1.75), "missed"),
])
def test_format_target(speedup, interval, word):
    text = format_target(2.0, speedup, interval)
    assert text.startswith(f"target 2× faster {word}: measured")
    assert format_target(2.0, None, None) == "target 2× not measured"
    assert "range over 2 rounds 2.05–2.20×" in format_target(2.0, 2.1, (2.05, 2.2),
                                                              "range over 2 rounds")
