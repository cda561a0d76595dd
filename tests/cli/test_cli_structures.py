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
train:
  epochs: 2
  lr: 5.0e-3
finetune:
  epochs: 0
measure:
  batch_size: 4
  repeats: 2
  energy: false
"""


def _run(tmp_path, recipe: str):
    """``prunekit prune`` of the RES model with ``recipe``; the run directory."""
    (tmp_path / "res.py").write_text(RES)
    (tmp_path / "r.yaml").write_text(recipe)
    runs = tmp_path / "runs"
    result = CliRunner().invoke(app, ["prune", f"{tmp_path}/res.py:make", "--recipe",
                                      str(tmp_path / "r.yaml"), "--data", "digits",
                                      "--runs-dir", str(runs), "--json", "--no-progress"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return runs / json.loads(result.stdout)["run"].split("/")[-1]


def _reload(tmp_path, run):
    spec = importlib.util.spec_from_file_location("res_model", tmp_path / "res.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return prunekit.load(run / "model", module.make).eval()


def test_depth_and_channels_recipe_runs_saves_and_reloads(tmp_path):
    run = _run(tmp_path, RECIPE)
    plans = json.loads((run / "plan.json").read_text())
    assert [p.get("structure", "channels") for p in plans] == ["depth", "channels"]
    reloaded = _reload(tmp_path, run)
    assert len(reloaded[2]) == 2
    assert reloaded(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_depth_only_recipe_saves_its_depth_plan(tmp_path):
    # a lone structure has no channel plan: the run must keep the depth plan to reload
    run = _run(tmp_path, RECIPE.replace("  channels:\n", ""))
    (plan,) = json.loads((run / "plan.json").read_text())
    assert plan["structure"] == "depth"
    assert len(_reload(tmp_path, run)[2]) == 2


def test_speedup_recipe_measures_width_or_depth_and_reloads(tmp_path):
    recipe = RECIPE.replace("  ratio: 0.3", "  speedup: 1.3\n  prefer: macs").replace(
        "  depth: {n_blocks: 1}", "  depth:")
    run = _run(tmp_path, recipe)
    plan = json.loads((run / "plan.json").read_text())
    report = json.loads((run / "report.json").read_text())
    # the job re-measures dense vs pruned as `measure:` says (no assertion on the value:
    # a tiny model on a busy machine may rightly back off and come back unpruned)
    assert report["comparison"]["measured_speedup"] > 0 and report["plan_summary"]
    applied = plan if isinstance(plan, list) else [plan]
    assert all("structure" in p or "groups" in p for p in applied)
    assert _reload(tmp_path, run)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


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
