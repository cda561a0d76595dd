"""`prunekit demo` end to end with a tiny setting: train, prune to a *measured* speedup,
fine-tune, measure, report — and say truthfully whether the target was met."""

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from prunekit.cli import app
from prunekit.demo import DemoConfig
from prunekit.report import load_report, print_report


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "cache"))


def test_demo_end_to_end(tmp_path):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, [
        "demo", "--epochs", "1", "--finetune-epochs", "1", "--target-speedup", "1.3",
        "--batch-size", "32", "--repeats", "4", "--runs-dir", str(runs), "--json",
        "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    run = runs / summary["run"].split("/")[-1]
    lo, hi = summary["measured_speedup_interval"]
    assert lo <= summary["measured_speedup"] <= hi
    assert summary["speedup_verdict"] in ("faster", "slower", "no measurable difference")
    # cut, or left whole when nothing measured faster
    assert summary["mac_speedup_theoretical"] >= 1
    report = load_report(run)
    assert report["target"] == {"speedup": 1.3, "max_accuracy_drop": 0.01}
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["target"]["speedup"] == pytest.approx(1.3 * 1.15)  # search margin
    assert config["demo"]["target_speedup"] == 1.3
    for name in ("report.html", "kept_width.png", "speedup.png", "accuracy_vs_compression.png",
                 "plan.json", "config.json", "model"):
        assert (run / name).exists(), name
    # the verdict printed is the one the measurement gives, met or missed
    met = summary["measured_speedup"] >= 1.3
    console = Console(record=True, width=240)
    print_report(report, console)
    text = console.export_text()
    assert f"target 1.3× faster {'met' if met else 'missed'}" in text
    assert "95 % CI" in text and "accuracy within 1 pt of dense" in text
    assert "target 1.3× faster" in (run / "report.html").read_text()


@pytest.mark.parametrize("field, value", [("target_speedup", 1.0), ("threads", 0),
                                          ("max_accuracy_drop", 1.5), ("repeats", 1),
                                          ("finetune_epochs", -1), ("epochs", True)])
def test_demo_config_is_validated(field, value):
    with pytest.raises(ValueError, match=field):
        DemoConfig(**{field: value})


def test_bad_demo_option_is_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--target-speedup", "0.5", "--runs-dir",
                                      str(tmp_path / "runs")])
    assert result.exit_code == 2 and "target_speedup" in result.output
    assert not (tmp_path / "runs").exists()
