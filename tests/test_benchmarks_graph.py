"""benchmarks/zoo_coverage.py runs end to end in smoke mode (so it never rots)."""

import json

from support import load_benchmark


def test_coverage_smoke(tmp_path):
    module = load_benchmark("zoo_coverage")
    out = tmp_path / "coverage.json"
    module.main(["--smoke", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert payload["machine"]["torch"] and payload["smoke"] is True
    rows = {(r["model"], r["tool"]): r for r in payload["results"]}
    assert rows[("torchvision/shufflenet_v2_x0_5", "prunekit")]["status"] == "ok"
    assert rows[("hf/bert", "prunekit")]["mac_reduction"] >= 1.5
    assert {r["tool"] for r in payload["results"]} == {"prunekit", "torch_pruning"}
