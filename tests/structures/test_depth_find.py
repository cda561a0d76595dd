"""find_blocks: which children of ModuleList/Sequential are removable residual blocks."""

from __future__ import annotations

import torch
import torchvision
from depth_models import ResMLP, tiny_hf
from torch import nn

from prunekit.structures import find_blocks


def names(model, inputs):
    return [b.name for b in find_blocks(model, inputs)]


def test_resnet18_identity_blocks_only():
    m = torchvision.models.resnet18()
    # first block of layer2..4 has a downsampling shortcut: not removable
    assert names(m, torch.randn(1, 3, 32, 32)) == [
        "layer1.0", "layer1.1", "layer2.1", "layer3.1", "layer4.1"]


def test_mobilenet_v2_inverted_residuals_with_skip():
    m = torchvision.models.mobilenet_v2()
    expected = [i for i, f in enumerate(m.features) if getattr(f, "use_res_connect", False)]
    got = names(m, torch.randn(1, 3, 32, 32))
    assert got == [f"features.{i}" for i in expected] and len(got) == 10


def test_vit_encoder_layers_named_sequential():
    m = torchvision.models.VisionTransformer(32, 8, 3, 2, 32, 64)
    assert names(m, torch.randn(1, 3, 32, 32)) == [
        f"encoder.layers.encoder_layer_{i}" for i in range(3)]


def test_hf_layer_lists(ids):
    assert names(tiny_hf("bert"), ids) == [f"encoder.layer.{i}" for i in range(4)]
    assert names(tiny_hf("gpt2"), ids) == [f"transformer.h.{i}" for i in range(4)]
    assert names(tiny_hf("llama"), ids) == [f"model.layers.{i}" for i in range(4)]


def test_shape_preserving_layers_without_skip_are_not_blocks():
    # conv 8->8, BN, ReLU and an SE-style gate x * sigmoid(Wx) all keep the shape
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            return x * torch.sigmoid(self.fc(x))

    m = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Sequential(nn.Flatten(2), nn.Identity()),)
    assert names(m, torch.randn(2, 8, 5, 5)) == []
    assert names(nn.Sequential(Gate(), nn.Linear(8, 8)), torch.randn(2, 8)) == []


def test_shared_block_called_twice_is_not_removable():
    class Shared(ResMLP):
        def forward(self, x):
            h = self.stem(x)
            for b in [*self.blocks, self.blocks[0]]:
                h = b(h)
            return self.head(h)

    assert names(Shared(), torch.randn(2, 4)) == ["blocks.1", "blocks.2", "blocks.3"]


def test_find_blocks_leaves_model_unchanged():
    m = torchvision.models.resnet18().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    find_blocks(m, torch.randn(2, 3, 32, 32))
    assert m.training and all(mod.training for mod in m.modules())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # BN stats too


def test_no_autograd_graph_survives_tracing():
    # a surviving graph would pin the parameters' gradient accumulators with their old
    # shapes, and training after a width cut (param.data replaced) would fail
    import gc

    m, x = ResMLP(), torch.randn(3, 4)
    gc.disable()
    try:
        find_blocks(m, x)
        fc1, fc2 = m.blocks[0].fc1, m.blocks[0].fc2
        fc1.weight.data, fc1.bias.data = fc1.weight.data[:5].clone(), fc1.bias.data[:5].clone()
        fc2.weight.data = fc2.weight.data[:, :5].clone()
        m(x).sum().backward()
    finally:
        gc.enable()
    assert fc1.weight.grad.shape == (5, 8)
