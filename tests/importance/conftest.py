"""Fixtures: tiny models with non-trivial weights and inputs."""

from __future__ import annotations

import pytest
import torch
from importance_models import ConvNet, HeadNet


@pytest.fixture
def convnet() -> ConvNet:
    torch.manual_seed(0)
    model = ConvNet()
    with torch.no_grad():  # non-trivial BatchNorm so that bn_scale and stats matter
        for bn in (model.bn1, model.bn2):
            bn.weight.uniform_(-1.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def headnet() -> HeadNet:
    torch.manual_seed(0)
    return HeadNet()
