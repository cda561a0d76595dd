"""The apps benchmarks run end to end in smoke mode (so they never rot), under the rules."""

import json

import pytest
from support import load_benchmark


def image_cs_selects_on_measurements_with_equal_grids(payload):
    grids = {m["name"]: m["grid"] for c in payload["comparisons"] for m in c["methods"]}
    assert grids["l1"] == grids["tree-lasso"] and len(grids["l1"]["alpha_ratio"]) >= 5
    for row in payload["rows"]:  # every choice scored on held-out measurements only
        assert len(row["selection"]["scores"]) == len(grids["l1"]["alpha_ratio"])
        assert row["selection"]["note"] in ("interior", "edge: widen the grid and re-run")
    edges = [r for r in payload["rows"] if r["selection"]["at_edge"]]
    assert payload["validity"]["valid"] == (not edges)


def hierarchy_reads_the_test_split_once_per_method(payload):
    for name in ("breast_cancer", "digits"):
        res = payload["results"][name]
        assert len(res["splits"]["test_reads"]) == 4  # 3 prunekit methods + sklearn
        assert res["splits"]["val_carved_from"] == "train"
        assert all(c["choice"]["values"] for c in res["chosen"].values())
    assert {m["grid_size"] for c in payload["comparisons"] for m in c["methods"]} == {5}


def sensing_curve_has_every_method(payload):
    block = payload["block_curve"]
    assert set(block["m_at_90"]) >= {"sklearn-omp", "group-lasso", "block-mmp"}


CHECKS = {"image_cs": image_cs_selects_on_measurements_with_equal_grids,
          "hierarchy": hierarchy_reads_the_test_split_once_per_method,
          "sensing_phase": sensing_curve_has_every_method,
          "state_space_id": lambda p: p["rows"]}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_benchmark_smoke(name, tmp_path):
    out = tmp_path / f"{name}.json"
    load_benchmark(name).main(["--smoke", "--out", str(out), "--img-dir", str(tmp_path)])
    payload = json.loads(out.read_text())
    assert payload["machine"]["torch"] and payload["provenance"]["config"]["smoke"] is True
    assert payload["provenance"]["complete"]
    assert list(tmp_path.glob("apps_*.png")), "no plot written"
    assert CHECKS[name](payload) is not False
