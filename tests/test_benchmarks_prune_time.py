"""benchmarks/prune_time.py runs end to end in smoke mode and keeps every reading."""

import json

from support import load_benchmark


def test_prune_time_smoke_keeps_every_reading(tmp_path):
    module = load_benchmark("prune_time")
    out = tmp_path / "prune_time.json"
    module.main(["--smoke", "--out", str(out)])
    payload = json.loads(out.read_text())
    (row,) = payload["rows"]
    for tool in ("prunekit", "torch_pruning"):
        readings = row["readings"][tool]
        assert len(readings) == 2 and all(r["wall_s"] > 0 for r in readings)
        lo, hi = row[tool]["wall_range_s"]
        assert lo <= row[tool]["median_wall_s"] <= hi
    # both tools cut the same model: each leaves fewer MACs than it started with
    macs = [r["macs_after"] for t in ("prunekit", "torch_pruning") for r in row["readings"][t]]
    assert len(set(macs[:2])) == 1  # prunekit is deterministic
    assert payload["provenance"]["config"]["ratio"] == 0.3 and "| resnet18 |" in payload["table"]
