"""benchmarks/zoo_coverage.py runs end to end in smoke mode (so it never rots)."""

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "zoo_coverage.py"


def test_coverage_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("_bench_coverage", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "coverage.json"
    module.main(["--smoke", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert payload["machine"]["torch"] and payload["smoke"] is True
    rows = {(r["model"], r["tool"]): r for r in payload["results"]}
    assert rows[("torchvision/shufflenet_v2_x0_5", "prunekit")]["status"] == "ok"
    assert rows[("hf/bert", "prunekit")]["mac_reduction"] >= 1.5
    assert {r["tool"] for r in payload["results"]} == {"prunekit", "torch_pruning"}
