"""The prunekit command end to end (typer's CliRunner), and one-line errors on bad input."""

import json

import pytest
import torch
from typer.testing import CliRunner

import prunekit
from prunekit.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_prune_then_report_then_bench(tiny):
    runs = tiny / "runs"
    result = invoke("prune", f"{tiny}/tiny.py:make", "--recipe", tiny / "fast.yaml", "--data",
                    "digits", "--runs-dir", runs, "--json", "--no-progress")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    run = runs / summary["run"].split("/")[-1]
    assert [p.name for p in runs.iterdir()] == [run.name]  # no temporary left behind
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "plan.json", "model", "report.json", "report.html",
            "kept_width.png", "speedup.png", "accuracy_vs_compression.png"} <= names
    assert summary["mac_speedup_theoretical"] > 1.5 and summary["macs_pruned"] > 0
    assert json.loads((run / "config.json").read_text())["recipe"]["target"]["ratio"] == 0.5

    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_model", tiny / "tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reloaded = prunekit.load(run / "model", module.make)
    assert reloaded(torch.randn(2, 1, 8, 8)).shape == (2, 10)

    shown = invoke("report", run)
    assert shown.exit_code == 0 and "Dense vs pruned" in shown.stdout

    bench = invoke("bench", f"{tiny}/tiny.py:make", "--pruned", run, "--data", "random:1x8x8",
                   "--repeats", 2, "--batch-size", 4, "--runs-dir", runs, "--json")
    assert bench.exit_code == 0, bench.output
    measured = json.loads(bench.stdout)
    assert measured["compression_ratio"] > 1.5 and measured["rho"] is not None
    assert len(list(runs.iterdir())) == 2


BAD = {
    "unknown model": (["prune", "torchvision:resnet19"], "did you mean"),
    "bad spec": (["prune", "resnet18"], "torchvision:NAME"),
    "missing file": (["prune", "nowhere.py:make"], "does not exist"),
    "missing factory": (["prune", "{tiny}/tiny.py:mkae"], "did you mean make"),
    "not a module": (["prune", "{tiny}/tiny.py:not_a_model"], "not a torch.nn.Module"),
    "unreadable weights": (["prune", "{tiny}/tiny.py:make", "--weights", "{tiny}/bad.pt"],
                           "cannot read weights"),
    "weights missing": (["prune", "{tiny}/tiny.py:make", "--weights", "{tiny}/none.pt"],
                        "does not exist"),
    "recipe typo": (["prune", "{tiny}/tiny.py:make", "--recipe", "{tiny}/typo.yaml"],
                    "'finetune.epoch' is not a recipe field: did you mean 'finetune.epochs'"),
    "recipe value": (["prune", "{tiny}/tiny.py:make", "--recipe", "{tiny}/value.yaml"],
                     "'target.macs'"),
    "missing recipe": (["prune", "{tiny}/tiny.py:make", "--recipe", "{tiny}/none.yaml"],
                       "cannot read recipe"),
    "missing dataset": (["prune", "{tiny}/tiny.py:make", "--data", "fashion-mnist:{tiny}/no"],
                        "Fashion-MNIST not found"),
    "unknown dataset": (["prune", "{tiny}/tiny.py:make", "--data", "imagenet"],
                        "unknown dataset"),
    "shape mismatch": (["prune", "{tiny}/tiny.py:make", "--data", "random:3x32x32"],
                       "does not run on inputs"),
    "training without labels": (["prune", "{tiny}/tiny.py:make", "--recipe",
                                 "{tiny}/prox.yaml"], "has no labels"),
    "not a run": (["report", "{tiny}"], "cannot read a report"),
    "bench not a run": (["bench", "{tiny}/tiny.py:make", "--pruned", "{tiny}"],
                        "is not a prunekit run"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_exit_2_and_nothing_written(tiny, case):
    (tiny / "bad.pt").write_bytes(b"definitely not a checkpoint")
    (tiny / "typo.yaml").write_text("finetune:\n  epoch: 3\n")
    (tiny / "value.yaml").write_text("target:\n  macs: 1.5\n")
    (tiny / "prox.yaml").write_text("method: proximal_group_lasso\ntarget:\n  macs: 0.5\n")
    args, expected = BAD[case]
    runs = tiny / "runs"
    extra = ["--runs-dir", runs] if args[0] != "report" else []
    result = invoke(*[a.format(tiny=tiny) for a in args], *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert expected in lines[0]
    assert not runs.exists()


def test_failure_during_run_leaves_nothing(tiny, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("prunekit.report.write_report", explode)
    runs = tiny / "runs"
    (tiny / "untrained.yaml").write_text("method: prune\ntarget: {ratio: 0.5}\n"
                                         "measure: {batch_size: 2, repeats: 2, energy: false}\n")
    with pytest.raises(RuntimeError, match="disk full"):
        invoke("prune", f"{tiny}/tiny.py:make", "--recipe", tiny / "untrained.yaml", "--data",
               "random:1x8x8", "--runs-dir", runs, "--no-progress")
    assert not runs.exists()


def test_help_lists_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("demo", "prune", "bench", "report"):
        assert command in result.stdout


def test_bench_fast_pool_times_both_models_with_index_free_pooling(tmp_path, monkeypatch):
    import prunekit.hardware.pooling as pooling

    def strided_is_faster(m, x, threads, repeats):  # deterministic pool timings
        return 9.0 if isinstance(m, torch.nn.MaxPool2d) else 1.0

    monkeypatch.setattr(pooling, "_min_ms", strided_is_faster)
    demo = f"{prunekit.__file__.rsplit('/', 1)[0]}/demo.py:digits_cnn"
    out = invoke("bench", demo, "--data", "random:1x8x8", "--repeats", 2,
                 "--batch-size", 4, "--runs-dir", tmp_path / "runs", "--fast-pool", "--json")
    assert out.exit_code == 0, out.output
    measured = json.loads(out.stdout)
    assert measured["fast_pool"] == {"dense": ["6", "10"], "pruned": ["6", "10"]}
    saved = json.loads(next((tmp_path / "runs").iterdir()).joinpath("report.json").read_text())
    assert saved["config"]["bench"]["fast_pool"]["dense"] == ["6", "10"]
    bad = runner.invoke(app, ["bench", demo, "--data", "random:1x8x8",
                              "--fast-pool", "--device", "cuda", "--runs-dir",
                              str(tmp_path / "runs")])
    # exit 2 either way: CUDA is missing here, or --fast-pool refuses a GPU device
    assert bad.exit_code == 2 and ("--fast-pool" in bad.output
                                   or "CUDA is not available" in bad.output)


def test_a_model_file_with_a_dataclass_loads(tmp_path):
    """A user's model file is imported as a registered module: dataclasses in it work
    (prunekit/demo.py is one; before, the import failed on `cls.__module__`)."""
    from prunekit.recipes.specs import build_model

    (tmp_path / "withdc.py").write_text(
        "from dataclasses import dataclass\nfrom torch import nn\n\n"
        "@dataclass\nclass Cfg:\n    width: int = 4\n\n"
        "def make():\n    return nn.Linear(Cfg().width, 2)\n")
    spec = build_model(f"{tmp_path}/withdc.py:make")
    assert spec.model.in_features == 4
    demo = build_model(f"{prunekit.__file__.rsplit('/', 1)[0]}/demo.py:digits_cnn")
    assert demo.default_shape == (1, 8, 8)
