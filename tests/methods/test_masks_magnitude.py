"""Masks on parametrize and magnitude pruning vs torch.nn.utils.prune."""

import copy

import pytest
import torch
from methods_helpers import SmallCNN, mlp
from torch import nn
from torch.nn.utils import parametrize, prune

from prunekit.methods import (
    apply_masks,
    bake,
    export_torch_prune,
    get_masks,
    import_torch_prune,
    magnitude_masks,
    magnitude_prune,
    prunable_weights,
    sparsity_of,
    strip_masks,
)


def _torch_targets(model):
    return [(model.get_submodule(n.rsplit(".", 1)[0]), "weight") for n in prunable_weights(model)]


@pytest.mark.parametrize("make", [lambda: mlp(), lambda: SmallCNN()])
def test_global_masks_equal_torch_prune_including_iterative(make):
    ours, ref = make(), None
    ref = copy.deepcopy(ours)
    magnitude_prune(ours, 0.6)
    prune.global_unstructured(_torch_targets(ref), pruning_method=prune.L1Unstructured, amount=0.6)
    n = sum(dict(ours.named_parameters())[n.replace("weight", "parametrizations.weight.original")]
            .numel() for n in prunable_weights(ours))
    k1 = round(0.6 * n)
    # torch's second amount is relative to what remains: k2 = k1 + round(0.6 (n - k1))
    magnitude_prune(ours, (k1 + round(0.6 * (n - k1))) / n)
    prune.global_unstructured(_torch_targets(ref), pruning_method=prune.L1Unstructured,
                              amount=0.6)
    masks = get_masks(ours)
    for name in prunable_weights(ref):
        module = ref.get_submodule(name.rsplit(".", 1)[0])
        assert torch.equal(masks[name], module.weight_mask.bool()), name
        torch.testing.assert_close(ours.get_submodule(name.rsplit(".", 1)[0]).weight,
                                   module.weight)
    assert sparsity_of(ours) == pytest.approx(0.84, abs=1e-3)  # 1 − 0.4²


def test_layer_masks_equal_l1_unstructured():
    ours = mlp()
    ref = copy.deepcopy(ours)
    masks = magnitude_masks(ours, 0.3, scope="layer")
    for name in prunable_weights(ref):
        module = ref.get_submodule(name.rsplit(".", 1)[0])
        prune.l1_unstructured(module, "weight", amount=0.3)
        assert torch.equal(masks[name], module.weight_mask.bool())
        assert (~masks[name]).sum() == round(0.3 * masks[name].numel())


def test_parameter_identity_optimizer_keeps_working_and_masked_stay_zero():
    model = mlp()
    p0 = model[1].weight
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    magnitude_prune(model, 0.5)
    assert model[1].parametrizations.weight.original is p0
    before = p0.detach().clone()
    model(torch.randn(8, 64)).sum().backward()
    opt.step()
    assert not torch.equal(p0, before)  # the optimizer still updates the same tensor
    mask = get_masks(model)["1.weight"]
    assert torch.all(model[1].weight[~mask] == 0)
    assert torch.equal(p0[~mask], before[~mask])  # masked entries get no gradient


def test_masks_only_shrink_and_bake():
    model = mlp()
    w = model[1].weight
    first = torch.rand_like(w) > 0.3
    second = torch.rand_like(w) > 0.3
    apply_masks(model, {"1.weight": first})
    apply_masks(model, {"1.weight": second})
    assert torch.equal(get_masks(model)["1.weight"], first & second)
    magnitude_prune(model, 0.0)  # asking for less sparsity never revives weights
    assert torch.equal(get_masks(model)["1.weight"], first & second)
    effective = model[1].weight.detach().clone()
    bake(model)
    assert model[1].weight is w and not parametrize.is_parametrized(model[1])
    assert torch.equal(model[1].weight.detach(), effective)
    assert get_masks(model) == {}


def test_strip_restores_dense_values():
    model = mlp()
    dense = model[1].weight.detach().clone()
    magnitude_prune(model, 0.7)
    strip_masks(model)
    assert torch.equal(model[1].weight.detach(), dense)


def test_torch_prune_import_export_round_trip():
    model = mlp()
    prune.global_unstructured(_torch_targets(model), pruning_method=prune.L1Unstructured,
                              amount=0.5)
    x = torch.randn(4, 64)
    ref_out = model(x)
    ref_masks = {n: model.get_submodule(n.rsplit(".", 1)[0]).weight_mask.bool().clone()
                 for n in prunable_weights(model)}
    imported = import_torch_prune(model)
    assert set(imported) == set(ref_masks)
    assert not hasattr(model[1], "weight_mask")
    torch.testing.assert_close(model(x), ref_out)
    export_torch_prune(model)
    assert torch.equal(model[1].weight_mask.bool(), ref_masks["1.weight"])
    torch.testing.assert_close(model(x), ref_out)


def test_bad_inputs_name_the_field():
    model = mlp()
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_masks(model, 1.0)
    with pytest.raises(ValueError, match="scope"):
        magnitude_masks(model, 0.5, scope="row")
    with pytest.raises(ValueError, match="shape"):
        apply_masks(model, {"1.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="no module"):
        apply_masks(model, {"nope.weight": torch.ones(3)})
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_mask_is_in_state_dict():
    model = mlp()
    magnitude_prune(model, 0.5)
    keys = model.state_dict().keys()
    assert "1.parametrizations.weight.0.mask" in keys
    assert isinstance(model[1], nn.Linear)
