"""The solver-speed benchmark's smoke mode runs and writes a well-formed report."""

import json

from support import load_benchmark


def test_solver_speed_smoke(tmp_path):
    mod = load_benchmark("solver_speed")
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
