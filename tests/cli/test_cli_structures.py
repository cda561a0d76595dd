"""Recipes with ``structures:``: depth and channels from the command line, reloadable."""

import importlib.util
import json

import torch
from typer.testing import CliRunner

import prunekit
from prunekit.cli import app
from prunekit.recipes import RecipeError, parse_recipe

torch.set_num_threads(1)

RES = '''
import torch
from torch import nn


class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return x + torch.relu(self.bn(self.conv(x)))


def make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                         nn.Sequential(Res(), Res(), Res()), nn.Flatten(), nn.Linear(8 * 64, 10))
'''

RECIPE = """
method: prune
target:
  ratio: 0.3
structures:
  depth: {n_blocks: 1}
  channels:
finetune:
  epochs: 0
measure:
  batch_size: 4
  repeats: 2
  energy: false
"""


def test_depth_and_channels_recipe_runs_saves_and_reloads(tmp_path):
    (tmp_path / "res.py").write_text(RES)
    (tmp_path / "r.yaml").write_text(RECIPE)
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, ["prune", f"{tmp_path}/res.py:make", "--recipe",
                                      str(tmp_path / "r.yaml"), "--data", "digits",
                                      "--runs-dir", str(runs), "--json", "--no-progress"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = runs / json.loads(result.stdout)["run"].split("/")[-1]
    plans = json.loads((run / "plan.json").read_text())
    assert [p.get("structure", "channels") for p in plans] == ["depth", "channels"]

    spec = importlib.util.spec_from_file_location("res_model", tmp_path / "res.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reloaded = prunekit.load(run / "model", module.make).eval()
    assert len(reloaded[2]) == 2
    assert reloaded(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_recipe_structure_errors_name_the_field():
    for data, message in [({"structures": {"dept": {"n_blocks": 1}}}, "did you mean 'depth'?"),
                          ({"structures": {}}, "name at least one structure"),
                          ({"method": "proximal_group_lasso", "structures": {"depth": None}},
                           "applies to method 'prune'")]:
        try:
            parse_recipe(data)
        except RecipeError as err:
            assert message in str(err), str(err)
        else:
            raise AssertionError(f"{data} was accepted")
