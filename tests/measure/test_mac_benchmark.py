"""The MAC benchmark's smoke mode runs, and on its models our count agrees within 1 % with
torch.utils.flop_counter and with fvcore under the same policy (and with ptflops' aten
backend, which adds convolution biases)."""

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "mac_counter.py"


def _load():
    spec = importlib.util.spec_from_file_location("mac_counter_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_agrees_with_references(tmp_path):
    out = tmp_path / "mac.json"
    result = _load().main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["machine"]["torch"] and saved["summary"]["n_models"] == 2
    for row in result["models"]:
        assert not row["errors"], row["errors"]
        assert row["counts"]["prunekit"] > 0
        for reference in ("flop_counter", "fvcore_matched", "ptflops_aten"):
            assert abs(row["rel_diff"][reference]) <= 0.01, (row["model"], reference)
        # fvcore's default also counts BatchNorm: never below ours
        assert row["counts"]["fvcore"] >= row["counts"]["prunekit"]
