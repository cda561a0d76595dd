"""activation_mean and apoz against activations recorded by hand; hooks never left behind."""

from __future__ import annotations

import pytest
import torch
from importance_models import (
    Group,
    Member,
    SharedReluBlock,
    assert_unchanged,
    conv1_group,
    head_group,
    shared_relu_groups,
    snapshot,
)
from torch import nn

from prunekit.importance import ImportanceContext, get, score_groups


def batches_of_images(n: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.randn(4, 3, 4, 4, generator=g) for _ in range(n)]


def act1_outputs(model, batches) -> torch.Tensor:
    """Reference: act1 outputs of every batch, channels first: (6, all other elements)."""
    model = model.eval()
    with torch.no_grad():
        outs = [model.act1(model.bn1(model.conv1(x))) for x in batches]
    return torch.cat([o.transpose(0, 1).flatten(1) for o in outs], dim=1)


def test_activation_mean_matches_recorded_activations(convnet):
    batches = batches_of_images()
    expected = act1_outputs(convnet, batches).abs().mean(1).double()
    scores = get("activation_mean")(convnet, conv1_group(), ImportanceContext(batches=batches))
    assert torch.allclose(scores, expected, rtol=1e-5)


def test_apoz_counts_zeros_after_the_activation(convnet):
    batches = batches_of_images()
    a = act1_outputs(convnet, batches)
    apoz = (a == 0).double().mean(1)
    assert 0 < apoz.mean() < 1                            # a test that can fail
    scores = get("apoz")(convnet, conv1_group(), ImportanceContext(batches=batches))
    assert torch.allclose(scores, 1 - apoz)


def test_last_listed_source_is_used(convnet):
    batches = batches_of_images(1)
    bn_only = conv1_group()
    bn_only.sources = [("act1", 1), ("bn1", 1)]           # bn1 listed last: pre-activation
    with torch.no_grad():
        bn_out = convnet.eval().bn1(convnet.conv1(batches[0]))
    expected = bn_out.abs().mean((0, 2, 3)).double()
    scores = get("activation_mean")(convnet, bn_only, ImportanceContext(batches=batches))
    assert torch.allclose(scores, expected, rtol=1e-5)
    # APoZ before a ReLU counts the values the ReLU will zero: the same as after it
    assert torch.allclose(get("apoz")(convnet, bn_only, ImportanceContext(batches=batches)),
                          get("apoz")(convnet, conv1_group(), ImportanceContext(batches=batches)))


def test_heads_average_their_features(headnet):
    x = torch.randn(2, 7, 8, generator=torch.Generator().manual_seed(0))  # (batch, tokens, dim)
    with torch.no_grad():
        a = headnet.act(headnet.proj(x))
    expected = a.abs().mean((0, 1)).reshape(3, 4).mean(1).double()
    scores = get("activation_mean")(headnet, head_group(), ImportanceContext(example_inputs=x))
    assert torch.allclose(scores, expected, rtol=1e-5)


def test_permuted_head_layout_follows_the_source_weight_index(headnet):
    x = torch.randn(2, 7, 8, generator=torch.Generator().manual_seed(0))
    heads = [[0, 5, 10, 3], [4, 1, 2, 11], [8, 9, 6, 7]]  # not contiguous blocks
    group = Group("h", 3, [Member("proj.weight", 0, heads), Member("out.weight", 1, heads)],
                  [("proj", 2)])
    with torch.no_grad():
        feature_mean = headnet.proj(x).abs().mean((0, 1))
    expected = torch.stack([feature_mean[h].mean() for h in heads]).double()
    scores = get("activation_mean")(headnet, group, ImportanceContext(example_inputs=x))
    assert torch.allclose(scores, expected, rtol=1e-5)


def test_one_activation_pass_and_no_hooks_left(convnet):
    calls = []
    convnet.conv1.register_forward_hook(lambda *args: calls.append(1))  # the user's own hook
    convnet.train()
    before = snapshot(convnet)
    ctx = ImportanceContext(batches=batches_of_images(3))
    group = conv1_group()
    score_groups(convnet, [group, group], {"apoz": 1.0, "activation_mean": 1.0}, ctx)
    assert len(calls) == 3
    assert_unchanged(convnet, before)                     # the user's hook is still there


def test_hooks_are_removed_when_the_forward_fails(convnet):
    before = snapshot(convnet)
    with pytest.raises(RuntimeError):
        get("apoz")(convnet, conv1_group(), ImportanceContext(example_inputs=torch.randn(1, 2)))
    assert_unchanged(convnet, before)


def test_without_sources_the_consumer_input_is_read(convnet):
    batches = batches_of_images()
    expected = act1_outputs(convnet, batches).abs().mean(1).double()
    group = conv1_group()
    group.sources = [("conv2", 1)]                        # 4 wide: incompatible with 6
    ctx = ImportanceContext(batches=batches)
    # conv2 consumes the channels (its weight is a member along dim 1): its input is act1's
    assert torch.allclose(get("activation_mean")(convnet, group, ctx), expected, rtol=1e-5)
    assert not ctx.notes


def test_unobserved_activations_fall_back_or_fail(convnet, images):
    group = conv1_group()
    group.sources = []
    group.members = [m for m in group.members if m.param != "conv2.weight"]
    ctx = ImportanceContext(example_inputs=images)
    assert torch.equal(get("apoz")(convnet, group, ctx), get("l2")(convnet, group, ctx))
    assert ctx.notes == ["apoz: group 'conv1' has no observed activation; scored by 'l2'"]
    with pytest.raises(ValueError, match="no activation of group 'conv1'"):
        get("activation_mean", fallback=None)(convnet, group, ctx)


def test_dict_inputs_and_tuple_outputs():
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 4)

        def forward(self, x, scale=1.0):
            y = torch.relu(self.lin(x)) * scale
            return y, y.sum()

    model = Pair()
    x = torch.randn(6, 3)
    idx = [[c] for c in range(4)]
    group = Group("lin", 4, [Member("lin.weight", 0, idx)], [("lin", 1)])
    ctx = ImportanceContext(example_inputs={"x": x, "scale": 2.0})
    with torch.no_grad():
        expected = model.lin(x).abs().mean(0).double()
    assert torch.allclose(get("activation_mean")(model, group, ctx), expected, rtol=1e-6)
    assert get("taylor")(model, group, ctx).shape == (4,)


def test_a_module_called_twice_is_read_at_the_right_call():
    torch.manual_seed(0)
    model = SharedReluBlock().eval()
    x = torch.randn(3, 4, 5, 5)
    with torch.no_grad():
        inner_out = model.inner(x.clone())
        stream_out = model(x.clone())
    ctx = ImportanceContext(example_inputs=x)
    inner, stream = shared_relu_groups()
    assert torch.allclose(get("activation_mean")(model, inner, ctx),
                          inner_out.mean((0, 2, 3)).double(), rtol=1e-5)
    assert torch.allclose(get("activation_mean")(model, stream, ctx),
                          stream_out.mean((0, 2, 3)).double(), rtol=1e-5)
    assert torch.allclose(get("apoz")(model, stream, ctx),
                          (stream_out != 0).double().mean((0, 2, 3)))
