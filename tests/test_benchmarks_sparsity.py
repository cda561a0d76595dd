"""The solver-speed benchmark's smoke mode runs and writes a well-formed report."""

import json

from support import load_benchmark


def test_solver_speed_smoke(tmp_path):
    mod = load_benchmark("solver_speed")
    out = tmp_path / "speed.json"
    report = mod.main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["machine"]["torch"] and saved["provenance"]["command"].endswith(
        f"--smoke --out {out}")
    assert saved["comparisons"][0]["budget_kind"] == "cpu_seconds"
    assert {r["problem"] for r in saved["results"]} == {"synthetic", "diabetes-splines"}
    for r in report["results"]:
        for solver in r["solvers"].values():
            last = solver["settings"][-1]
            if solver["reached"]:  # the call that reached the target: every reading kept
                assert len(last["readings"]) == 2 and solver["cpu_s_summary"]["n"] == 2
        ours = r["solvers"]["prunekit BlockCD"]
        assert ours["reached"] and ours["time_to_target_s"] > 0  # our solver reaches it
        assert all(s["objective"] >= r["best_objective"] for s in ours["settings"])
        pkg = r["solvers"]["group-lasso (pkg)"]  # alpha/2: the package solves our problem
        assert min(s["rel_suboptimality"] for s in pkg["settings"]) < 1e-3
    assert saved["table"]["columns"][0] == "problem" and len(saved["table"]["rows"]) == 2
