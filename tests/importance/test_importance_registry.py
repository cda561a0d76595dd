"""Registry: names, errors, options, resolution of user input."""

from __future__ import annotations

import pytest
import torch
from importance_models import ConvNet, conv1_group

from prunekit.importance import (
    ImportanceContext,
    available,
    combine,
    get,
    register,
    resolve,
    score_groups,
)
from prunekit.importance import registry as registry_module

BUILT_IN = ["act_norm", "activation_mean", "apoz", "bn_scale", "fisher", "fluctuation", "l1",
            "l2", "obd", "obs", "random", "taylor"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Register into a copy, so that test criteria do not leak into other tests."""
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))


def test_all_criteria_are_registered():
    assert available() == BUILT_IN


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="unknown importance 'l3'") as err:
        get("l3")
    for name in BUILT_IN:
        assert name in str(err.value)


def test_duplicate_registration_is_an_error(scratch_registry):
    with pytest.raises(ValueError, match="already registered"):
        register("l2")(lambda model, group, ctx: None)
    with pytest.raises(ValueError, match="non-empty"):
        register("")


def test_custom_criterion_is_used(scratch_registry, convnet):
    @register("channel_index")
    def channel_index(model, group, ctx):
        return torch.arange(group.size, dtype=torch.float32)

    assert "channel_index" in available()
    scores = score_groups(convnet, [conv1_group()], "channel_index")
    assert torch.equal(scores["conv1"], torch.arange(6, dtype=torch.float64))


def test_options_are_bound_and_checked(convnet):
    group = conv1_group()
    plain = get("l2")(convnet, group, None)
    normed = get("l2", normalize_members=True)(convnet, group, None)
    assert not torch.allclose(plain, normed)
    with pytest.raises(ValueError, match="no option"):
        get("l2", p=3)


def test_resolve_accepts_name_mapping_and_callable(convnet):
    group = conv1_group()
    assert resolve("l1") is get("l1")
    mixed = resolve({"l1": 1.0})
    assert torch.allclose(mixed(convnet, group, None), combine({"l1": 1.0})(convnet, group))
    fn = lambda model, group, ctx: torch.ones(group.size)  # noqa: E731
    assert resolve(fn) is fn
    with pytest.raises(TypeError, match="importance must be"):
        resolve(3)


def test_score_groups_checks_what_a_criterion_returns(convnet):
    group = conv1_group()
    with pytest.raises(ValueError, match=r"shape \(5,\).*expected \(6,\)"):
        score_groups(convnet, [group], lambda m, g, c: torch.ones(5))
    with pytest.raises(ValueError, match="NaN"):
        score_groups(convnet, [group], lambda m, g, c: torch.full((6,), float("nan")))
    with pytest.raises(TypeError, match="not a Tensor"):
        score_groups(convnet, [group], lambda m, g, c: [1.0] * 6)


def test_context_rejects_bad_fields():
    with pytest.raises(ValueError, match="n_batches"):
        ImportanceContext(n_batches=0)
    with pytest.raises(TypeError, match="loss_fn"):
        ImportanceContext(loss_fn=3)


def test_data_criteria_without_data_say_so():
    model = ConvNet()
    with pytest.raises(ValueError, match="needs data"):
        get("taylor")(model, conv1_group(), ImportanceContext())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_scores_equal_cpu_scores(convnet, images):
    groups = [conv1_group()]
    cpu = {n: score_groups(convnet, groups, n, ImportanceContext(example_inputs=images))
           for n in available()}
    model, x = convnet.cuda(), images.cuda()
    for name, expected in cpu.items():
        got = score_groups(model, groups, name, ImportanceContext(example_inputs=x))
        assert got["conv1"].device.type == "cpu"
        assert torch.allclose(got["conv1"], expected["conv1"], rtol=1e-3, atol=1e-6), name
