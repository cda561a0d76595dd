"""benchmarks/diagnose_sweep.py --smoke runs end to end and writes sane JSON and plots."""

import json

from support import load_benchmark


def test_diagnose_sweep_smoke(tmp_path):
    bench = load_benchmark("diagnose_sweep")
    out = tmp_path / "diagnose_sweep_smoke.json"
    res = bench.main(["--smoke", "--out", str(out), "--img-dir", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved["machine"] and saved["provenance"]["config"]["smoke"] is True
    records = res["sweep"]["records"]
    assert [r["lam"] for r in records] == [0.0, 1e-3, 1.0]
    assert records[-1]["groups_kept"] < records[0]["groups_kept"]
    assert all(len(r["diagnosis"]["layers"]) == 4 for r in records)
    # the sweep reads validation accuracy; the test set once per λ
    assert saved["accuracy_split"] == "val" and set(saved["test_accuracy"]) == {"0", "0.001", "1"}
    assert saved["splits"]["test_reads"] == ["λ=0", "λ=0.001", "λ=1"]
    for name in ("diagnose_sweep_smoke.png", "diagnose_layers_dense_smoke.png",
                 "diagnose_layers_safe_smoke.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    again = bench.main(["--replot", str(out), "--img-dir", str(tmp_path / "re")])
    assert set(again["images"]) >= {"sweep", "layers_dense"}
