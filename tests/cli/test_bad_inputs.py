"""Every bad input: exit status 2, one ``error:`` line on stderr, no traceback, nothing
written. Rows are argv (``{tiny}`` is the fixture's folder) or recipe text; all run
in-process (typer's CliRunner) and stop before any training or timing."""

import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from prunekit.cli import app

NO_GPU = not torch.cuda.is_available()
MODEL = "{tiny}/tiny.py:make"

FILES = {
    "exits.py": "import sys\nsys.exit(3)\n",
    "raises.py": "from torch import nn\n\ndef make():\n    raise RuntimeError('no weights here')\n"
                 "\ndef quits():\n    raise SystemExit(5)\n",
    "conv.py": "from torch import nn\n\ndef make():\n    return nn.Sequential(nn.Conv2d(1, 2, 1), "
               "nn.AdaptiveAvgPool2d(1), nn.Flatten())\n",
    "empty.yaml": "",
    "comments.yaml": "# nothing but a comment\n",
    "binary.yaml": b"\xff\xfe\x00bad",
}

ARGV = [  # (id, argv, message)
    ("device typo", ["bench", MODEL, "--device", "tpu9"], "unknown device 'tpu9'"),
    ("device type", ["bench", MODEL, "--device", "mps"], "is not supported"),
    ("random data too large", ["bench", MODEL, "--data", "random:3x100000x100000"],
     "more than half of the"),
    ("random batch too large", ["bench", "{tiny}/conv.py:make", "--data", "random:1x2000x2000",
                                "--batch-size", "4096"], "more than half of the"),
    ("random shape", ["prune", MODEL, "--data", "random:3xabc"], "bad shape"),
    ("model file exits", ["prune", "{tiny}/exits.py:make"], "called sys.exit(3)"),
    ("factory raises", ["prune", "{tiny}/raises.py:make"],
     "calling make() from '{tiny}/raises.py' failed: RuntimeError: no weights here"),
    ("factory exits", ["prune", "{tiny}/raises.py:quits"], "called sys.exit(5)"),
    ("empty recipe", ["prune", MODEL, "--recipe", "{tiny}/empty.yaml"],
     "is empty: add at least a method and a target"),
    ("comment-only recipe", ["prune", MODEL, "--recipe", "{tiny}/comments.yaml"], "is empty"),
    ("binary recipe", ["prune", MODEL, "--recipe", "{tiny}/binary.yaml"], "cannot read recipe"),
    ("threads 0", ["bench", MODEL, "--threads", "0"], "Invalid value for '--threads'"),
    ("repeats huge", ["bench", MODEL, "--repeats", "100000000000000000000000"],
     "less than or equal to 10000"),
    ("batch huge", ["bench", MODEL, "--batch-size", "100000"], "less than or equal to 4096"),
    ("batch not a number", ["bench", MODEL, "--batch-size", "abc"], "'--batch-size'"),
    ("unknown option", ["prune", MODEL, "--recipes", "x.yaml"], "No such option"),
    ("missing model", ["prune"], "Missing argument"),
    ("demo epochs 0", ["demo", "--epochs", "0"], "'--epochs'"),
    ("demo repeats huge", ["demo", "--repeats", "99999999"], "'--repeats'"),
    ("demo seed negative", ["demo", "--seed", "-1"], "'--seed'"),
]
if NO_GPU:
    ARGV += [("cuda without a GPU", ["bench", MODEL, "--device", "cuda"],
              "CUDA is not available"),
             ("cuda index without a GPU", ["bench", MODEL, "--device", "cuda:1"],
              "CUDA is not available")]

RECIPES = [  # (id, recipe text, message)
    ("repeats 1e23", "measure:\n  repeats: 1e23\n",
     "'measure.repeats': Input should be a valid integer (got 1e+23)"),
    ("repeats 1.0e23", "measure: {repeats: 1.0e23}\n", "'measure.repeats'"),
    ("repeats above bound", "measure: {repeats: 100000}\n", "less than or equal to 10000"),
    ("repeats 1", "measure: {repeats: 1}\n", "greater than or equal to 2"),
    ("epochs negative", "finetune: {epochs: -1}\n", "'finetune.epochs'"),
    ("epochs float", "finetune: {epochs: 2.5}\n", "'finetune.epochs': Input should be a valid "
                                                   "integer"),
    ("epochs string", "finetune: {epochs: '3'}\n", "'finetune.epochs': Input should be a "
                                                    "valid integer"),
    ("epochs bool", "finetune: {epochs: true}\n", "'finetune.epochs'"),
    ("epochs huge", "schedule: {epochs: 1000000}\n", "'schedule.epochs'"),
    ("train epochs huge", "train: {epochs: 1000001}\n", "'train.epochs'"),
    ("lr nan", "schedule: {lr: .nan}\n", "'schedule.lr': Input should be a finite number"),
    ("lam inf", "schedule: {lam: .inf}\n", "'schedule.lam'"),
    ("lr huge", "finetune: {lr: 100}\n", "'finetune.lr': Input should be less than or equal"),
    ("lr zero", "train: {lr: 0}\n", "'train.lr': Input should be greater than 0"),
    ("batch zero", "measure: {batch_size: 0}\n", "'measure.batch_size'"),
    ("batch huge", "finetune: {batch_size: 10000000}\n", "'finetune.batch_size'"),
    ("threads huge", "measure: {threads: 5000}\n", "'measure.threads'"),
    ("device typo", "measure: {device: tpu9}\n", "unknown device 'tpu9'"),
    ("seed negative", "seed: -1\n", "'seed'"),
    ("seed huge", "seed: 100000000000000000000\n", "'seed'"),
    ("speedup absurd", "target: {speedup: 1.0e9}\n", "'target.speedup'"),
    ("macs string", "target: {macs: half}\n", "'target.macs': Input should be a valid number"),
    ("round_to 0", "round_to: 0\n", "'round_to'"),
    ("margin too wide", "checks: {chance_margin: 0.9}\n", "'checks.chance_margin'"),
    ("allow not a bool", "checks: {allow_collapse: maybe}\n", "'checks.allow_collapse'"),
    ("checks typo", "checks: {allow_colapse: true}\n", "did you mean 'checks.allow_collapse'"),
    ("training without labels", "train: {epochs: 1}\n", "has no labels"),
    ("structure option huge", "structures: {depth: {n_blocks: 1.0e23}}\n",
     "structures.depth.n_blocks must be a finite number"),
    ("structure option object", "structures: {depth: {n_blocks: {a: 1}}}\n",
     "structures.depth.n_blocks must be a number"),
]
if NO_GPU:
    RECIPES.append(("cuda without a GPU", "measure: {device: cuda}\n", "CUDA is not available"))


@pytest.fixture
def files(tiny):
    for name, text in FILES.items():
        path = tiny / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return tiny


def _assert_one_line_exit_2(result, message, runs):
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not an escaped error
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in lines[0], lines[0]
    assert not runs.exists()


@pytest.mark.parametrize("case, argv, message", ARGV, ids=[row[0] for row in ARGV])
def test_bad_argv(files, case, argv, message):
    runs = files / "runs"
    args = [a.format(tiny=files) for a in argv]
    if args[0] in ("prune", "bench", "demo") and len(args) > 1:
        args += ["--runs-dir", str(runs)]
    result = CliRunner().invoke(app, args, terminal_width=1000)
    _assert_one_line_exit_2(result, message.format(tiny=files), runs)


@pytest.mark.parametrize("case, text, message", RECIPES, ids=[row[0] for row in RECIPES])
def test_bad_recipe(files, case, text, message):
    runs = files / "runs"
    (files / "r.yaml").write_text(text)
    data = "random:1x8x8" if case == "training without labels" else "digits"
    result = CliRunner().invoke(app, ["prune", f"{files}/tiny.py:make", "--recipe",
                                      str(files / "r.yaml"), "--data", data, "--runs-dir",
                                      str(runs)], terminal_width=1000)
    _assert_one_line_exit_2(result, message, runs)


def test_the_real_command_exits_2_when_a_model_file_exits(files):
    """Out of process: the file's own ``sys.exit(3)`` does not become prunekit's status."""
    done = subprocess.run([sys.executable, "-m", "prunekit.cli", "prune",
                           f"{files}/exits.py:make", "--runs-dir", str(files / "runs")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "called sys.exit(3)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
