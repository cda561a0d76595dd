"""Hand-built coupled groups (the graph contract: Group.members with param/dim/index)."""

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Member:
    param: str
    dim: int
    index: list


@dataclass
class Group:
    id: str
    size: int
    members: list = field(default_factory=list)


@dataclass
class GroupSet:
    groups: list
    skipped: list = field(default_factory=list)


def digit_mlp(seed=0):
    """64-32-10 MLP for the 8×8 digits (lottery tests)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def mlp(sizes=(64, 32, 16, 10), seed=0):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(nn.Flatten(), *layers)


def mlp_groups(model):
    """Every hidden neuron: its row of W_i, its bias, and its column of W_{i+1}."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    groups = []
    for (name, lin), (nxt, _) in zip(linears[:-1], linears[1:]):
        c = lin.out_features
        groups.append(Group(f"{name}.out", c, [
            Member(f"{name}.weight", 0, [[i] for i in range(c)]),
            Member(f"{name}.bias", 0, [[i] for i in range(c)]),
            Member(f"{nxt}.weight", 1, [[i] for i in range(c)]),
        ]))
    return GroupSet(groups)


class SmallCNN(nn.Module):
    def __init__(self, c1=6, c2=8, n_classes=10, hw=8):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(c2 * (hw // 2) ** 2, n_classes)
        self.hw = hw

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


def cnn_groups(model):
    c1, c2 = model.conv1.out_channels, model.conv2.out_channels
    hw = (model.hw // 2) ** 2
    ch = lambda n: [[i] for i in range(n)]  # noqa: E731
    g1 = Group("conv1.out", c1, [Member("conv1.weight", 0, ch(c1)), Member("conv1.bias", 0, ch(c1)),
                                 Member("bn1.weight", 0, ch(c1)), Member("bn1.bias", 0, ch(c1)),
                                 Member("bn1.running_mean", 0, ch(c1)),
                                 Member("bn1.running_var", 0, ch(c1)),
                                 Member("conv2.weight", 1, ch(c1))])
    g2 = Group("conv2.out", c2, [Member("conv2.weight", 0, ch(c2)), Member("conv2.bias", 0, ch(c2)),
                                 Member("fc.weight", 1,
                                        [list(range(i * hw, (i + 1) * hw)) for i in range(c2)])])
    return GroupSet([g1, g2])


def slice_out(model, group_set, removal):
    """Reference surgery: rebuild every member tensor without the removed channels."""
    params = dict(model.named_parameters()) | dict(model.named_buffers())
    by_id = {g.id: g for g in group_set.groups}
    new = {}
    for gid, chans in removal.items():
        for m in by_id[gid].members:
            t = new.get(m.param, params[m.param].detach())
            drop = {i for c in chans for i in m.index[c]}
            keep = torch.tensor([i for i in range(t.shape[m.dim]) if i not in drop])
            new[m.param] = t.index_select(m.dim, keep)
    return new
