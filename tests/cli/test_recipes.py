"""Recipe schema, specs and atomic run directories (no model training here)."""

import glob
from pathlib import Path

import pytest
import torch
from torch import nn

from prunekit.recipes import RecipeError, load_recipe, parse_recipe
from prunekit.recipes.runs import new_run
from prunekit.recipes.specs import SpecError, load_dataset, load_weights, parse_shape

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(glob.glob(str(ROOT / "examples/recipes/*.yaml"))))
def test_example_recipes_validate(path):
    assert load_recipe(path).method in ("prune", "proximal_group_lasso")


def test_examples_exist():
    assert len(glob.glob(str(ROOT / "examples/recipes/*.yaml"))) >= 2


@pytest.mark.parametrize("data, message", [
    ({"finetun": {}}, "'finetun' is not a recipe field: did you mean 'finetune'?"),
    ({"finetune": {"epoch": 1}}, "did you mean 'finetune.epochs'?"),
    ({"target": {"macs": 2}}, "recipe field 'target.macs': Input should be less than or equal"),
    ({"target": {"macs": 0.5, "ratio": 0.1}},
     "exactly one of target.macs, target.ratio or target.speedup"),
    ({"target": {"speedup": 1.0}}, "recipe field 'target.speedup': Input should be greater"),
    ({"method": "proximal_group_lasso", "target": {"speedup": 2}},
     "instead of target.speedup"),
    ({"target": {"speedup": 2}, "structures": {"depth": {"n_blocks": 1}}},
     "with target.speedup, give {depth, channels}"),
    ({"target": {"ratio": 0.2, "prefer": "macs"}}, "target.prefer applies with target.speedup"),
    ({"target": {"speedup": 2, "prefer": "macs"}}, "target.prefer: chooses between width"),
    ({"target": {"speedup": 2, "prefer": "mac"}}, "recipe field 'target.prefer'"),
    ({"method": "magic"}, "recipe field 'method'"),
    ({"importance": "l22"}, "did you mean 'l2'?"),
    ({"method": "proximal_group_lasso", "target": {"ratio": 0.2}}, "set target.macs"),
    ([1, 2], "must be a YAML mapping"),
])
def test_recipe_errors_name_the_field(data, message):
    with pytest.raises(RecipeError) as err:
        parse_recipe(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_recipe_defaults_and_yaml(tmp_path):
    assert parse_recipe(None).target.macs == 0.5
    (tmp_path / "r.yaml").write_text("method: prune\ntarget: {ratio: 0.25}\n"
                                     "finetune: {epochs: 0}\n")
    recipe = load_recipe(tmp_path / "r.yaml")
    assert recipe.target.ratio == 0.25 and recipe.finetune.epochs == 0
    (tmp_path / "bad.yaml").write_text("method: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(tmp_path / "bad.yaml")


def test_parse_shape():
    assert parse_shape("3x224x224") == (3, 224, 224)
    for bad in ("3x", "abc", "0x2"):
        with pytest.raises(SpecError, match="bad shape"):
            parse_shape(bad)


def test_random_dataset_is_unlabeled_and_seeded():
    data = load_dataset("random:2x4x4")
    assert not data.labeled and data.sample_shape == (2, 4, 4)
    assert torch.equal(data.batch(3, seed=1), data.batch(3, seed=1))


def test_digits_batch_repeats_test_set():
    data = load_dataset("digits")
    assert data.labeled and data.batch(1000).shape == (1000, 1, 8, 8)


def test_weights_safetensors_torch_and_refused_pickle(tmp_path):
    from safetensors.torch import save_file

    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    load_weights(target, tmp_path / "w.safetensors")
    assert torch.equal(target.weight, source.weight)
    torch.save({"state_dict": nn.Linear(3, 2).state_dict()}, tmp_path / "w.pt")
    load_weights(target, tmp_path / "w.pt")
    torch.save({"model": nn.Linear(3, 2), "x": object()}, tmp_path / "pickled.pt")
    with pytest.raises(SpecError, match="cannot read weights"):
        load_weights(target, tmp_path / "pickled.pt")  # weights_only refuses objects
    torch.save(nn.Linear(4, 2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(SpecError, match="do not fit the model"):
        load_weights(target, tmp_path / "other.pt")


def test_new_run_publishes_on_success_and_cleans_on_failure(tmp_path):
    root = tmp_path / "runs"
    with new_run(root) as run:
        (run.path / "a.txt").write_text("x")
        assert run.path.name.startswith(".tmp-")
    assert run.final.parent == root and (run.final / "a.txt").read_text() == "x"
    with pytest.raises(KeyError), new_run(root) as failed:
        (failed.path / "half.txt").write_text("half")
        raise KeyError
    assert [p.name for p in root.iterdir()] == [run.final.name]
    fresh = tmp_path / "never"
    with pytest.raises(KeyError), new_run(fresh):
        raise KeyError
    assert not fresh.exists()
