"""Deterministic stand-ins for timers: latency as a function of layer shapes only."""

from __future__ import annotations

import math

import torch
from torch import nn

from prunekit.hardware.layers import LayerSpec, profile_layers

TILE = 8  # fake hardware: widths are padded up to a multiple of this


def fake_layer_ms(layer: LayerSpec, cin: int, cout: int) -> float:
    """MAC-proportional time of a layer whose widths are padded to TILE, plus overhead."""
    pad = lambda w: math.ceil(w / TILE) * TILE  # noqa: E731
    cin_eff = 1 if layer.depthwise else pad(cin) // dict(layer.attrs).get("groups", 1)
    spatial = layer.out_numel / layer.n_out
    kernel = math.prod(dict(layer.attrs).get("kernel_size", (1,)))
    return 1e-6 * pad(cout) * cin_eff * kernel * spatial + 0.01


REST_MS = 3.0  # everything outside the timed layers (fixed share and activation share)


def fake_model_ms(model: nn.Module, x: torch.Tensor, dense_numel: float,
                  beta: float = 0.4) -> float:
    """``Σ fake_layer_ms`` over the model's layers as they run now + a rest term."""
    layers = profile_layers(model, x)
    act = sum(la.out_numel for la in layers) / dense_numel
    return sum(fake_layer_ms(la, la.n_in, la.n_out) for la in layers) + \
        REST_MS * (beta + (1 - beta) * act)


def fake_latency_fn(x: torch.Tensor, dense: nn.Module, beta: float = 0.4):
    numel = sum(la.out_numel for la in profile_layers(dense, x))
    return lambda model: fake_model_ms(model, x, numel, beta)


class ResNetish(nn.Module):
    """Stem, a residual block, a depthwise conv and a classifier: coupled groups."""

    def __init__(self, width: int = 32, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
                               nn.BatchNorm2d(2 * width), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(2 * width, width, 3, padding=1, bias=False),
                               nn.BatchNorm2d(width))
        self.dw = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, groups=width),
                                nn.BatchNorm2d(width), nn.ReLU())
        self.mid = nn.Sequential(nn.Conv2d(width, 3 * width, 1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(3 * width, 4 * width), nn.ReLU(),
                                  nn.Linear(4 * width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        h = torch.relu(h + self.b(self.a(h)))
        return self.head(self.mid(self.dw(h)))


def resnetish(seed: int = 0) -> ResNetish:
    torch.manual_seed(seed)
    model = ResNetish(width=64).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.running_var.uniform_(0.5, 2.0)
    return model
