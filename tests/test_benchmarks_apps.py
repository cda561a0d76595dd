"""The apps benchmarks run end to end in smoke mode (so they never rot)."""

import json

import pytest
from support import load_benchmark


@pytest.mark.parametrize("name", ["sensing_phase", "image_cs", "state_space_id", "hierarchy"])
def test_benchmark_smoke(name, tmp_path):
    out = tmp_path / f"{name}.json"
    load_benchmark(name).main(["--smoke", "--out", str(out), "--img", str(tmp_path)])
    payload = json.loads(out.read_text())
    assert payload["machine"]["torch"] and payload["smoke"] is True
    assert list(tmp_path.glob("apps_*.png")), "no plot written"
