"""Smoke test of benchmarks/oneshot.py under the harness (synthetic data, seconds): one seed
writes its file with provenance, defaults and tuned comparisons and test reads; seeds are
combined by ``--combine`` only from complete files of one command; grids are checked
before any work."""

from __future__ import annotations

import json

import pytest
import torch
from support import load_benchmark

METHODS = ["l2", "l2+ls", "obs+ls", "l2+bias", "tp_magnitude"]


def _run(bench, tmp_path, seed: int) -> dict:
    out = tmp_path / f"s{seed}.json"
    bench.main(["--smoke", "--seed", str(seed), "--out", str(out), "--dense-cache",
                str(tmp_path / "cache"), "--methods", *METHODS])
    return json.loads(out.read_text())


def test_oneshot_smoke_seed_and_combine(tmp_path):
    bench = load_benchmark("oneshot")
    threads = torch.get_num_threads()
    doc = _run(bench, tmp_path, 0)
    assert torch.get_num_threads() == threads
    assert doc["provenance"]["complete"] and "--smoke" in doc["provenance"]["argv"]
    assert doc["calibration"]["samples"] == 64
    got = {(r["method"], r["selection"]) for r in doc["rows"]}
    assert got == {("dense", "dense"), *((m, "default") for m in METHODS),
                   ("l2+ls", "tuned"), ("obs+ls", "tuned")}
    # the test set was read once per reported row, under the row's name
    assert len(doc["splits"]["test_reads"]) == len(doc["rows"])
    names = {c["name"]: c for c in doc["comparisons"]}
    assert set(names) == {"4x defaults", "4x tuned"}
    tuned = names["4x tuned"]
    assert {m["grid_size"] for m in tuned["methods"]} == {3}
    assert all(len(c["scores"]) == 3 for c in tuned["choices"].values())
    ls = next(r for r in doc["rows"] if (r["method"], r["selection"]) == ("l2+ls", "default"))
    assert ls["values"] == {"damping": 0.01}
    assert ls["reconstruction"] and all(r["err_after"] <= r["err_before"]
                                        for r in ls["reconstruction"])
    assert ls["mac_reduction"] > 3.5 and ls["gram_bytes"] > 0
    tp = next(r for r in doc["rows"] if r["method"] == "tp_magnitude")
    assert tp["macs"] <= next(r["macs"] for r in doc["rows"] if r["method"] == "l2")


def test_oneshot_combine_needs_valid_distinct_seeds(tmp_path):
    bench = load_benchmark("oneshot")
    docs = [_run(bench, tmp_path, s) for s in (0, 1)]
    files = [str(tmp_path / f"s{s}.json") for s in (0, 1)]
    if not all(d.get("validity", {}).get("valid", True) for d in docs):
        with pytest.raises(SystemExit, match="invalid"):
            bench.main(["--combine", *files, "--out", str(tmp_path / "c.json")])
        return
    out = bench.main(["--combine", *files, "--out", str(tmp_path / "c.json")])
    assert {s["seed"] for s in out["sources"]} == {0, 1}
    pair = next(p for p in out["pairs"] if (p["a"], p["b"]) == ("l2+ls", "l2"))
    assert pair["n"] == 2 and pair["verdict"].startswith("no verdict")
    with pytest.raises(SystemExit, match="twice"):
        bench.main(["--combine", files[0], files[0], "--out", str(tmp_path / "d.json")])


def test_oneshot_refuses_a_lone_or_unequal_grid(tmp_path):
    bench = load_benchmark("oneshot")
    with pytest.raises(SystemExit, match="only method with a grid"):
        bench.parse(["--smoke", "--methods", "l2", "l2+ls"])
    with pytest.raises(SystemExit, match="equal grids"):
        bench.parse(["--methods", "l2+ls", "obs+ls", "l2+block", "--block-lr", "1e-4", "1e-3"])
    with pytest.raises(SystemExit, match="not on its grid"):
        bench.parse(["--methods", "l2+ls", "obs+ls", "--damping", "1e-3", "1e-1", "1"])


def test_oneshot_pairs_say_a_verdict_only_over_five_seeds():
    bench = load_benchmark("oneshot")
    rows = [{"level": "4x", "method": m, "selection": "default", "seed": s, "test": acc + s / 1000,
             "mac_reduction": 4.0} for s in range(5) for m, acc in
            (("l2+ls", 0.86), ("l2", 0.40), ("tp_magnitude", 0.86))]
    pairs = {(p["a"], p["b"]): p for p in bench.paired(rows)}
    assert pairs[("l2+ls", "l2")]["verdict"] == "ahead"
    assert pairs[("l2+ls", "l2")]["mean_delta_pt"] == pytest.approx(46.0)
    assert pairs[("l2+ls", "tp_magnitude")]["verdict"] == "tie"   # Δ = 0 on every seed
    few = bench.paired([r for r in rows if r["seed"] < 3])
    assert all(p["verdict"].startswith("no verdict") for p in few)
    summary = {(s["method"]): s for s in bench.summarize(rows)}
    assert summary["l2"]["n"] == 5 and summary["l2"]["test_mean"] == pytest.approx(40.2)


def test_oneshot_minilm_smoke(tmp_path):
    """Tiny random BERT: heads and FFN units cut, least squares re-fit, R@1 read once per row."""
    bench = load_benchmark("oneshot")
    out = tmp_path / "m.json"
    bench.main(["--smoke", "--model", "minilm", "--criteria", "l2", "obs", "--modes", "none",
                "ls", "--out", str(out)])
    doc = json.loads(out.read_text())
    rows = [r for r in doc["rows"] if r["method"] != "dense"]
    assert {r["method"] for r in rows} == {"l2", "obs", "l2+ls", "obs+ls"}
    assert len(doc["splits"]["test_reads"]) == len(doc["rows"])
    assert all(r["measured_speedup"] > 0 and r["shape"] == [0, 1, 64] for r in rows)
    ls = next(r for r in rows if (r["method"], r["selection"]) == ("l2+ls", "tuned"))
    assert ls["reconstruction"] and ls["val_cosine"] >= next(
        r["val_cosine"] for r in rows if r["method"] == "l2") - 1e-6
