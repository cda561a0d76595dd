"""Collapse checks in the run path: a dense baseline at chance stops before pruning (exit 3,
nothing written), a collapsed pruned model is saved but fails (exit 3, ``ok`` false, the
reasons in the report), and both become recorded warnings when the user allows them."""

import json

import pytest
import torch
from typer.testing import CliRunner

from prunekit.cli import app
from prunekit.recipes import runner

QUICK = """
method: prune
target: {ratio: 0.5}
finetune: {epochs: 0}
measure: {batch_size: 4, repeats: 2, energy: false}
"""
TRAINED = QUICK + "train: {epochs: 2, lr: 5.0e-3}\n"


def _prune(tiny, recipe, *extra):
    (tiny / "r.yaml").write_text(recipe)
    return CliRunner().invoke(app, ["prune", f"{tiny}/tiny.py:make", "--recipe",
                                    str(tiny / "r.yaml"), "--data", "digits", "--runs-dir",
                                    str(tiny / "runs"), "--json", "--no-progress", *extra],
                              terminal_width=1000)


def _zero_everything(model, example, job, log):
    """A "method" that collapses the model: every conv and linear weight set to 0."""
    from prunekit.surgery import Plan

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                module.weight.zero_()
    return Plan(), {}


def test_untrained_dense_fails_before_pruning(tiny, monkeypatch):
    def never(*args):
        raise AssertionError("pruning ran on a dense baseline at chance")

    monkeypatch.setitem(runner.PRUNE_METHODS, "prune", never)
    result = _prune(tiny, QUICK)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("failed: the dense baseline is at chance: accuracy")
    assert "is it trained?" in line and "--allow-collapse" in line
    assert not (tiny / "runs").exists()


def test_collapsed_pruned_model_is_saved_marked_failed_exit_3(tiny, monkeypatch):
    monkeypatch.setitem(runner.PRUNE_METHODS, "prune", _zero_everything)
    result = _prune(tiny, TRAINED)
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is False and summary["checks"] == "failed"
    failures = " | ".join(summary["failures"])
    assert "the pruned model is at chance" in failures
    assert "same output for every input" in failures
    assert "3 all-zero layer(s): 0, 3, 6" in failures
    assert "FAILED: the pruned model" in result.stderr and "Traceback" not in result.stderr
    (run,) = (tiny / "runs").iterdir()
    checks = json.loads((run / "report.json").read_text())["checks"]
    assert checks["status"] == "failed" and checks["ok"] is False
    assert checks["models"]["dense"]["ok"] and checks["models"]["dense"]["accuracy"] > 0.5
    assert checks["models"]["pruned"]["zero_layers"] == ["0", "3", "6"]


@pytest.mark.parametrize("how", ["recipe", "flag"])
def test_allow_collapse_records_the_failures(tiny, monkeypatch, how):
    monkeypatch.setitem(runner.PRUNE_METHODS, "prune", _zero_everything)
    result = (_prune(tiny, QUICK + "checks: {allow_collapse: true}\n") if how == "recipe"
              else _prune(tiny, QUICK, "--allow-collapse"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["checks"] == "allowed"
    assert any("dense baseline is at chance" in f for f in summary["failures"])
    assert any("pruned model" in f for f in summary["failures"])
    assert "allowed: the dense baseline" in result.stderr


def test_bench_checks_both_models_before_timing(tiny):
    args = ["bench", f"{tiny}/tiny.py:make", "--data", "digits", "--repeats", "2",
            "--batch-size", "4", "--runs-dir", str(tiny / "runs"), "--json"]
    refused = CliRunner().invoke(app, args, terminal_width=1000)
    assert refused.exit_code == 3, refused.output
    assert "nothing was timed" in refused.stderr and not (tiny / "runs").exists()
    allowed = CliRunner().invoke(app, [*args, "--allow-collapse"], terminal_width=1000)
    assert allowed.exit_code == 0, allowed.output
    measured = json.loads(allowed.stdout)
    assert measured["checks"] == "allowed" and measured["ok"] is True


def test_unlabeled_data_checks_outputs_and_layers_only(tiny):
    (tiny / "r.yaml").write_text(QUICK)
    result = CliRunner().invoke(app, ["prune", f"{tiny}/tiny.py:make", "--recipe",
                                      str(tiny / "r.yaml"), "--data", "random:1x8x8", "--runs-dir",
                                      str(tiny / "runs"), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    (run,) = (tiny / "runs").iterdir()
    checks = json.loads((run / "report.json").read_text())["checks"]
    assert checks["status"] == "passed"
    assert checks["models"]["pruned"]["accuracy"] is None
    assert checks["models"]["pruned"]["constant_outputs"] is False
