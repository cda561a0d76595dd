"""benchmarks/diagnose_sweep.py --smoke runs end to end and writes sane JSON and plots."""

import json

import torch
from support import load_benchmark


def test_diagnose_sweep_smoke(tmp_path):
    threads = torch.get_num_threads()
    bench = load_benchmark("diagnose_sweep")
    try:
        res = bench.main(["--smoke", "--results-dir", str(tmp_path), "--img-dir",
                          str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "diagnose_sweep_smoke.json").read_text())
    assert saved["machine"] and saved["config"]["smoke"] is True
    records = res["sweep"]["records"]
    assert [r["lam"] for r in records] == [0.0, 1e-3, 1.0]
    assert records[-1]["groups_kept"] < records[0]["groups_kept"]
    assert all(len(r["diagnosis"]["layers"]) == 4 for r in records)
    for name in ("diagnose_sweep_smoke.png", "diagnose_layers_dense_smoke.png",
                 "diagnose_layers_safe_smoke.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
