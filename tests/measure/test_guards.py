"""Collapse checks (prunekit.measure.guards) and the device check (prunekit.measure.devices)."""

import json

import pytest
import torch
from torch import nn

from prunekit.measure.devices import parse_device, validate_device
from prunekit.measure.guards import (
    CHANCE_MARGIN,
    Checks,
    chance_accuracy,
    check_model,
    constant_outputs,
    output_change,
    zero_layers,
)


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 64, 10))


X = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_chance_is_the_best_constant_guess():
    assert chance_accuracy(torch.arange(10).repeat(5)) == pytest.approx(0.1)
    assert chance_accuracy(torch.tensor([0] * 7 + [1] * 3)) == pytest.approx(0.7)
    assert chance_accuracy(torch.tensor([0, 1]), n_classes=10) == pytest.approx(0.5)
    assert chance_accuracy(torch.tensor([3, 3, 3, 3]), n_classes=10) == 1.0


def test_zero_layers_names_zeroed_kernels_not_zero_init_norms():
    model = _cnn()
    nn.init.zeros_(model[1].weight)  # zero-init BatchNorm scale: a legitimate design
    assert zero_layers(model) == []
    nn.init.zeros_(model[0].weight)
    assert zero_layers(model) == ["0"]


def test_constant_outputs():
    model = _cnn().eval()
    with torch.no_grad():
        out = model(X)
    assert constant_outputs(out) is False
    assert constant_outputs(out[:1]) is None  # one sample: cannot tell
    assert constant_outputs(torch.ones(4, 3) * 5 + 1e-7 * torch.randn(4, 3)) is True
    assert constant_outputs(torch.tensor([[1.0, float("nan")], [2.0, 3.0]])) is True
    nn.init.zeros_(model[0].weight)  # conv gives 0, BN gives its shift: same output
    with torch.no_grad():
        assert constant_outputs(model(X)) is True


def test_output_change():
    before = torch.tensor([[1.0, -2.0]])
    assert output_change(before, before + torch.tensor([[0.0, 0.5]])) == (0.5, 0.25)
    assert output_change(torch.zeros(2), torch.zeros(2)) == (0.0, 0.0)


def test_check_model_at_the_margin():
    labels = torch.arange(10).repeat(10)
    chance = 0.1
    at = check_model(_cnn(), "pruned", X, chance + CHANCE_MARGIN, labels)
    assert not at.ok and "the pruned model is at chance" in at.failures[0]
    assert at.chance == pytest.approx(chance) and at.n_classes == 10
    above = check_model(_cnn(), "pruned", X, chance + CHANCE_MARGIN + 1e-3, labels)
    assert above.ok and above.constant_outputs is False and above.zero_layers == []
    unlabeled = check_model(_cnn(), "dense", X)
    assert unlabeled.ok and unlabeled.chance is None
    with pytest.raises(ValueError, match="margin"):
        check_model(_cnn(), "dense", X, margin=1.0)


def test_check_model_restores_training_mode_and_leaves_bn_statistics():
    model = _cnn().train()
    stats = model[1].running_mean.clone()
    check_model(model, "dense", X)
    assert model.training and torch.equal(model[1].running_mean, stats)


def test_collapsed_model_lists_every_failure_and_checks_status():
    model = _cnn()
    for m in model:
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.zeros_(m.weight)
    found = check_model(model, "pruned", X, 0.1, torch.arange(10).repeat(2))
    text = " | ".join(found.failures)
    assert "at chance" in text and "same output" in text and "2 all-zero layer(s): 0, 4" in text
    checks = Checks()
    checks.add(check_model(_cnn(), "dense", X, 0.9, torch.arange(10).repeat(2)))
    assert checks.status == "passed" and checks.ok
    checks.add(found)
    assert checks.status == "failed" and not checks.ok and checks.failures == found.failures
    allowed = Checks(allow_collapse=True, models=checks.models)
    assert allowed.status == "allowed" and allowed.ok and allowed.failures
    data = json.loads(json.dumps(checks.to_dict()))
    assert data["ok"] is False and data["models"]["pruned"]["zero_layers"] == ["0", "4"]


@pytest.mark.parametrize("device, message", [
    ("tpu9", "unknown device 'tpu9'"), ("cuda:-1", "unknown device"),
    ("mps", "not supported"), ("meta", "not supported"),
])
def test_device_strings_rejected(device, message):
    with pytest.raises(ValueError, match=message):
        parse_device(device)


def test_device_type_and_availability():
    assert validate_device("cpu") == torch.device("cpu")
    assert parse_device(torch.device("cuda:1")).index == 1  # syntax only
    with pytest.raises(TypeError, match="device must be a string"):
        validate_device(0)
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:0"):
            with pytest.raises(ValueError, match="CUDA is not available"):
                validate_device(name)
    else:
        count = torch.cuda.device_count()
        with pytest.raises(ValueError, match=f"has {count} CUDA"):
            validate_device(f"cuda:{count}")


def test_python_api_rejects_a_bad_device_before_touching_the_model():
    import prunekit
    from prunekit.measure import compare

    model = _cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="unknown device"):
        prunekit.prune(model, X[:2], target_speedup=2.0, device="tpu9")
    with pytest.raises(ValueError, match="unknown device"):
        compare(model, model, X[:2], device="tpu9", repeats=2)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
