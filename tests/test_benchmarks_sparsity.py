"""The solver-speed benchmark's smoke mode runs and writes a well-formed report."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_solver_speed_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("solver_speed",
                                                  ROOT / "benchmarks/solver_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "speed.json"
    report = mod.main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["machine"]["torch"] and saved["machine"]["date"]
    assert {r["problem"] for r in saved["results"]} == {"synthetic", "diabetes-splines"}
    for r in report["results"]:
        ours = r["solvers"]["prunekit BlockCD"]
        assert ours["time_to_target_s"] is not None  # our solver reaches the target
        assert all(run["objective"] >= r["best_objective"] for run in ours["runs"])
    assert "| problem |" in saved["table_markdown"]
