"""Latency, throughput, peak memory, energy and compare(): behaviour, not wall-clock values."""

import json
import os

import pytest
import torch
from torch import nn

from prunekit.measure import (
    accuracy_retention,
    compare,
    energy,
    latency,
    model_bytes,
    peak_memory,
    throughput,
)
from prunekit.measure.energy_meter import rapl_joules, rapl_reader
from prunekit.measure.timing import batch_size_of, cpu_threads


def _mlp(hidden=64):
    return nn.Sequential(nn.Linear(32, hidden), nn.ReLU(), nn.Linear(hidden, 4))


def test_latency_stats_and_thread_count_restored():
    torch.set_num_threads(1)
    stats = latency(_mlp(), torch.randn(8, 32), threads=2, warmup=1, repeats=7)
    assert torch.get_num_threads() == 1
    assert len(stats.samples_ms) == 7 and all(s > 0 for s in stats.samples_ms)
    assert stats.min_ms <= stats.p25_ms <= stats.median_ms <= stats.p75_ms
    assert stats.iqr_ms == pytest.approx(stats.p75_ms - stats.p25_ms)
    assert stats.batch_size == 8 and stats.threads == 2 and stats.device == "cpu"
    json.dumps(stats.to_dict())


@pytest.mark.parametrize("field, value", [("warmup", -1), ("repeats", 0), ("threads", 0)])
def test_latency_rejects_bad_counts(field, value):
    with pytest.raises(ValueError, match=field):
        latency(_mlp(), torch.randn(2, 32), **{field: value})


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        latency(_mlp(), torch.randn(2, 32), device="cuda")


def test_cpu_threads_restores_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), cpu_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_throughput_counts_items():
    stats = throughput(_mlp(), torch.randn(5, 32), warmup=1, min_seconds=0.05)
    assert stats.batch_size == 5 and stats.iterations >= 1
    assert stats.items_per_s == pytest.approx(5 * stats.iterations / stats.seconds)
    assert batch_size_of({"x": torch.zeros(3, 2)}) == 3 and batch_size_of(1.0) is None


def test_peak_memory_cpu_matches_activation_sizes():
    model = nn.Sequential(nn.Linear(100, 1000), nn.ReLU(), nn.Linear(1000, 10))
    stats = peak_memory(model, torch.randn(64, 100))
    # linear output and ReLU output (64×1000 float32) are alive together
    assert stats.peak_bytes == 2 * 64 * 1000 * 4
    assert stats.weights_bytes == model_bytes(model) == (100 * 1000 + 1000 + 10010) * 4
    assert stats.total_bytes == stats.peak_bytes + stats.weights_bytes


def test_peak_memory_inplace_and_chain_release():
    # in-place ReLU allocates nothing; each Linear output dies after the next one is made
    chain = nn.Sequential(nn.Linear(10, 500), nn.ReLU(inplace=True), nn.Linear(500, 500),
                          nn.Linear(500, 500), nn.Linear(500, 10))
    assert peak_memory(chain, torch.randn(8, 10)).peak_bytes == 2 * 8 * 500 * 4


def test_peak_memory_profiler_method_sees_at_least_the_tensors():
    model = nn.Sequential(nn.Linear(100, 1000), nn.ReLU(), nn.Linear(1000, 10))
    x = torch.randn(64, 100)
    profiled = peak_memory(model, x, cpu_method="profiler")
    assert profiled.method.startswith("torch.profiler")
    assert profiled.peak_bytes >= peak_memory(model, x).peak_bytes
    with pytest.raises(ValueError, match="cpu_method"):
        peak_memory(model, x, cpu_method="rss")


def test_model_bytes_counts_buffers_and_shared_once():
    lin = nn.Linear(3, 3, bias=False)
    model = nn.Sequential(lin, lin, nn.BatchNorm1d(3))
    # 9 weights + BN weight/bias (6) + running mean/var (6) float32 + num_batches (int64)
    assert model_bytes(model) == (9 + 6 + 6) * 4 + 8
    assert model_bytes(model, include_buffers=False) == 15 * 4


def test_energy_unavailable_is_labeled_not_invented(tmp_path):
    stats = energy(_mlp(), torch.randn(2, 32), rapl_root=str(tmp_path))
    assert stats.joules_per_inference is None
    assert stats.source.startswith("unavailable:")


def _fake_rapl(root, values, max_range=1000):
    for i, value in enumerate(values):
        domain = root / f"intel-rapl:{i}"
        (domain / f"intel-rapl:{i}:0").mkdir(parents=True)
        (domain / "energy_uj").write_text(f"{value}\n")
        (domain / "max_energy_range_uj").write_text(f"{max_range}\n")


def test_rapl_reader_sums_packages_and_handles_wraparound(tmp_path):
    _fake_rapl(tmp_path, [100, 900])
    read, source = rapl_reader(str(tmp_path))
    assert source == "rapl:intel-rapl:0,intel-rapl:1"
    assert read() == [100, 900]
    # package 0: +400 µJ; package 1 wrapped: 900 → 1000 → 0 → 50 = 151 µJ
    assert rapl_joules([100, 900], [500, 50], str(tmp_path)) == pytest.approx(551e-6)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_rapl_unreadable_counter_is_labeled(tmp_path):
    _fake_rapl(tmp_path, [1])
    (tmp_path / "intel-rapl:0" / "energy_uj").chmod(0)
    read, source = rapl_reader(str(tmp_path))
    assert read is None and "not readable" in source


def test_energy_from_fake_rapl_counter(tmp_path, monkeypatch):
    _fake_rapl(tmp_path, [0])
    readings = iter([[0], [3_000_000]])
    monkeypatch.setattr("prunekit.measure.energy_meter.rapl_reader",
                        lambda root: (lambda: next(readings), "rapl:intel-rapl:0"))
    stats = energy(_mlp(), torch.randn(2, 32), rapl_root=str(tmp_path), min_seconds=0.01)
    assert stats.iterations >= 1
    assert stats.joules_per_inference == pytest.approx(3.0 / stats.iterations)


def test_accuracy_retention():
    assert accuracy_retention(0.8, 0.76) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="dense_score"):
        accuracy_retention(0.0, 0.5)


def test_compare_ratios_and_labels():
    dense, pruned = _mlp(256), _mlp(64)
    calls = []
    result = compare(dense, pruned, torch.randn(16, 32), eval_fn=lambda m: calls.append(m) or
                     (0.9 if m is dense else 0.81), repeats=4, rounds=2, warmup=1,
                     max_spread=None)
    macs = (32 * 256 + 256 * 4) / (32 * 64 + 64 * 4)
    assert result.mac_speedup_theoretical == pytest.approx(macs)
    assert result.compression_ratio == pytest.approx((32 * 256 + 256 + 256 * 4 + 4) /
                                                     (32 * 64 + 64 + 64 * 4 + 4))
    assert result.rho == pytest.approx(result.measured_speedup / macs)
    assert result.accuracy_retention == pytest.approx(0.9)
    assert len(result.latency_dense.samples_ms) == 4 and calls == [dense, pruned]
    assert result.energy_ratio is None or result.energy_ratio > 0
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["labels"]["mac_speedup_theoretical"].startswith("theory")
    assert payload["memory_ratio"] > 1
