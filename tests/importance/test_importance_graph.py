"""Importance on groups from the real graph, and against Torch-Pruning's importances."""

from __future__ import annotations

import pytest
import torch
from importance_models import ConvNet, SharedReluBlock, assert_unchanged, conv1_group, snapshot
from torch import nn

from prunekit.importance import ImportanceContext, available, get, rank_channels, score_groups

graph = pytest.importorskip("prunekit.graph")


@pytest.fixture(scope="module")
def resnet():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    with torch.no_grad():  # BatchNorm as after training, so that bn_scale is not all ones
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.1, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return model, x, graph.build_groups(model, x).groups


@pytest.fixture(scope="module")
def tp_groups(resnet):
    """Torch-Pruning's groups of the same model: (root layer name, group) pairs."""
    tp = pytest.importorskip("torch_pruning")
    model, x, _ = resnet
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    names = {m: n for n, m in model.named_modules()}
    groups = dg.get_all_groups(root_module_types=[nn.Conv2d, nn.Linear])
    return [(names[g[0].dep.target.module], g) for g in groups]


def torch_pruning_scores(tp_groups, importance) -> dict[str, torch.Tensor]:
    """Torch-Pruning's score per out-channel of each group's root layer, keyed by its name."""
    out = {}
    for root, group in tp_groups:
        scores = importance(group)
        if scores is not None:
            out[root] = scores.double()
    return out


def matched(groups, reference: dict[str, torch.Tensor]):
    """(our group, root-channel order, reference scores) for groups rooted at the same layer."""
    for g in groups:
        for m in g.members:
            root = m.param.removesuffix(".weight")
            if m.dim == 0 and m.param.endswith(".weight") and root in reference:
                yield g, [idx[0] for idx in m.index], reference[root]
                break


def test_l2_squared_equals_torch_pruning_group_magnitude(resnet, tp_groups):
    model, _, groups = resnet
    tp = pytest.importorskip("torch_pruning")
    imp = tp.importance.GroupMagnitudeImportance(p=2, group_reduction="sum", normalizer=None,
                                                 bias=True)
    pairs = list(matched(groups, torch_pruning_scores(tp_groups, imp)))
    assert len(pairs) == len(groups) >= 10
    for g, order, ref in pairs:
        ours = get("l2")(model, g, None) ** 2
        assert torch.allclose(ours, ref[order], rtol=1e-4), g.id


def test_bn_scale_equals_torch_pruning_bn_scale(resnet, tp_groups):
    model, _, groups = resnet
    tp = pytest.importorskip("torch_pruning")
    imp = tp.importance.BNScaleImportance(group_reduction="sum", normalizer=None)
    pairs = list(matched(groups, torch_pruning_scores(tp_groups, imp)))
    assert len(pairs) == len(groups)
    for g, order, ref in pairs:
        assert torch.allclose(get("bn_scale")(model, g, None), ref[order], rtol=1e-5), g.id


def test_every_criterion_on_real_groups_leaves_the_model_alone(resnet):
    model, x, groups = resnet
    model.train()
    before = snapshot(model)
    ctx = ImportanceContext(batches=[x, x.flip(-1)])
    for name in available():
        scores = score_groups(model, groups, name, ctx)
        assert all(scores[g.id].shape == (g.size,) for g in groups), name
        plan = rank_channels(scores, global_ranking=True, ratio=0.5, round_to=8)
        assert all(len(plan[g.id]) < g.size for g in groups), name
    assert_unchanged(model, before)
    model.eval()


def test_hand_built_groups_match_the_graph():
    """The stand-in groups of these tests are what the graph builds."""
    model = ConvNet().eval()
    built = graph.build_groups(model, torch.randn(2, 3, 4, 4)).groups[0]
    ours = conv1_group()
    assert (built.id, built.size) == (ours.id, ours.size)
    assert sorted((m.param, m.dim, m.index) for m in built.members) == \
        sorted((m.param, m.dim, m.index) for m in ours.members)
    assert built.sources == ours.sources


def test_activations_on_graph_groups_with_a_shared_relu():
    torch.manual_seed(0)
    model = SharedReluBlock().eval()
    x = torch.randn(3, 4, 5, 5)
    (group,) = graph.build_groups(model, x).groups
    with torch.no_grad():
        inner = model.inner(x.clone())
    ctx = ImportanceContext(example_inputs=x)
    assert torch.allclose(get("activation_mean")(model, group, ctx),
                          inner.mean((0, 2, 3)).double(), rtol=1e-5)
    assert torch.allclose(get("apoz")(model, group, ctx), (inner != 0).double().mean((0, 2, 3)))


def test_attention_heads_are_read_at_the_output_projection_input():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=50, n_positions=16,
                                  bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    groups = graph.build_groups(model, ids).groups
    heads = [g for g in groups if g.size == 4]
    assert len(heads) == 1 and not heads[0].sources     # heads exist only inside attention
    recorded = []
    proj = model.transformer.h[0].attn.c_proj
    handle = proj.register_forward_pre_hook(lambda m, args: recorded.append(args[0].detach()))
    with torch.no_grad():
        model(ids)
    handle.remove()
    expected = recorded[0].abs().mean((0, 1)).reshape(4, 8).mean(1).double()
    ctx = ImportanceContext(example_inputs=ids)
    assert torch.allclose(get("activation_mean")(model, heads[0], ctx), expected, rtol=1e-5)
    assert not ctx.notes
    scores = score_groups(model, groups, "apoz", ctx)
    assert all(scores[g.id].shape == (g.size,) for g in groups)
