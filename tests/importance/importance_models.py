"""Tiny models with hand-built groups that follow the Group contract of the graph layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Member:
    param: str
    dim: int
    index: list[list[int]]


@dataclass
class Group:
    id: str
    size: int
    members: list[Member]
    sources: list[tuple[str, int]] = field(default_factory=list)


def one_each(n: int) -> list[list[int]]:
    return [[c] for c in range(n)]


class ConvNet(nn.Module):
    """conv1 → bn1 → act1 → conv2 → bn2 → act2 → flatten → fc (4x4 inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.act2 = nn.ReLU()
        self.fc = nn.Linear(4 * 16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        return self.fc(x.flatten(1))


def conv1_group() -> Group:
    """conv1's output channels: conv1 filters + bias, bn1 (params and stats), conv2 inputs."""
    idx = one_each(6)
    members = [Member("conv1.weight", 0, idx), Member("conv1.bias", 0, idx)]
    members += [Member(f"bn1.{n}", 0, idx) for n in ("weight", "bias", "running_mean",
                                                     "running_var")]
    members.append(Member("conv2.weight", 1, idx))
    return Group("conv1", 6, members, [("conv1", 1), ("bn1", 1), ("act1", 1)])


def conv2_group() -> Group:
    """conv2's output channels, flattened into fc: channel c owns fc inputs c*16..c*16+15."""
    idx = one_each(4)
    flat = [list(range(c * 16, (c + 1) * 16)) for c in range(4)]
    members = [Member("conv2.weight", 0, idx), Member("bn2.weight", 0, idx),
               Member("bn2.bias", 0, idx), Member("fc.weight", 1, flat)]
    return Group("conv2", 4, members, [("conv2", 1), ("bn2", 1), ("act2", 1)])


class HeadNet(nn.Module):
    """proj (8 → 12 = 3 heads x 4) → GELU → out (12 → 5); heads are the channels."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 12)
        self.act = nn.GELU()
        self.out = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.proj(x)))


def head_group() -> Group:
    heads = [list(range(h * 4, (h + 1) * 4)) for h in range(3)]
    members = [Member("proj.weight", 0, heads), Member("proj.bias", 0, heads),
               Member("out.weight", 1, heads)]
    return Group("heads", 3, members, [("proj", -1), ("act", -1)])


def snapshot(model: nn.Module) -> dict:
    """Everything the importance layer promises not to change."""
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grad": {n: None if p.grad is None else p.grad.clone()
                 for n, p in model.named_parameters()},
        "training": {n: m.training for n, m in model.named_modules()},
        "hooks": {n: (len(m._forward_hooks), len(m._forward_pre_hooks),
                      len(m._backward_hooks)) for n, m in model.named_modules()},
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["state"].keys() == before["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key
    assert after["requires_grad"] == before["requires_grad"]
    for name, grad in before["grad"].items():
        if grad is None:
            assert after["grad"][name] is None, name
        else:
            assert torch.equal(after["grad"][name], grad), name
    assert after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]


class SharedReluBlock(nn.Module):
    """A residual block whose one ReLU module is called twice (as in torchvision ResNet)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)

    def inner(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn2(self.conv2(self.inner(x))) + x)


def shared_relu_groups() -> tuple[Group, Group]:
    idx = one_each(4)
    inner = Group("inner", 4, [Member("conv1.weight", 0, idx), Member("conv2.weight", 1, idx)],
                  [("conv1", 1), ("bn1", 1), ("relu", 1)])
    stream = Group("stream", 4, [Member("conv2.weight", 0, idx), Member("conv1.weight", 1, idx)],
                   [("conv2", 1), ("bn2", 1), ("relu", 1)])
    return inner, stream
