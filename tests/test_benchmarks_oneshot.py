"""Smoke test of benchmarks/oneshot.py (synthetic data, seconds): it runs and writes JSON."""

from __future__ import annotations

import json

import torch
from support import load_benchmark


def test_oneshot_smoke(tmp_path):
    bench = load_benchmark("oneshot")
    threads = torch.get_num_threads()
    result = bench.main(["--smoke", "--results-dir", str(tmp_path), "--dense-cache",
                         str(tmp_path / "cache"), "--methods", "l2", "l2+ls", "l2+bias",
                         "l2+block", "obs", "tp_magnitude"])
    assert torch.get_num_threads() == threads
    saved = json.loads((tmp_path / "oneshot_smoke_lenet5.json").read_text())
    assert saved["commit"] and "--smoke" in saved["argv"]
    methods = {r["method"] for r in saved["rows"]}
    assert methods == {"dense", "l2", "l2+ls", "l2+bias", "l2+block", "obs", "tp_magnitude"}
    ls = next(r for r in result["rows"] if r["method"] == "l2+ls")
    assert ls["reconstruction"] and all(r["err_after"] <= r["err_before"]
                                        for r in ls["reconstruction"])
    assert ls["mac_reduction"] > 3.5 and ls["gram_bytes"] > 0
