"""The apps benchmarks run end to end in smoke mode (so they never rot)."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["sensing_phase", "image_cs", "state_space_id", "hierarchy"])
def test_benchmark_smoke(name, tmp_path):
    out = tmp_path / f"{name}.json"
    _load(name).main(["--smoke", "--out", str(out), "--img", str(tmp_path)])
    payload = json.loads(out.read_text())
    assert payload["machine"]["torch"] and payload["smoke"] is True
    assert list(tmp_path.glob("apps_*.png")), "no plot written"
