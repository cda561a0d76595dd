"""`prunekit demo` end to end with a tiny setting: train, prune to a MAC budget, fine-tune,
measure, report — everything saved under the run directory."""

import json

from typer.testing import CliRunner

from prunekit.cli import app


def test_demo_end_to_end(tmp_path):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, [
        "demo", "--epochs", "1", "--prox-epochs", "1", "--finetune-epochs", "1",
        "--target-macs", "0.5", "--repeats", "2", "--runs-dir", str(runs), "--json",
        "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    run = runs / summary["run"].split("/")[-1]
    # the budget is enforced at finalize: at most 50 % of the MACs are kept (theory)
    assert summary["mac_speedup_theoretical"] >= 2.0 - 1e-6
    assert summary["measured_speedup"] > 0 and summary["rho"] is not None
    assert 0 < summary["accuracy_retention"] <= 2
    report = json.loads((run / "report.json").read_text())
    assert report["curves"]["regularization_path"]["x"]
    assert [p["label"] for p in report["curves"]["accuracy_vs_compression"]] == [
        "dense", "cut", "fine-tuned"]
    for name in ("report.html", "kept_width.png", "regularization_path.png", "speedup.png",
                 "accuracy_vs_compression.png", "plan.json", "config.json", "model"):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["recipe"]["method"] == \
        "proximal_group_lasso"
