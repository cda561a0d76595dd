"""Property tests over random architectures (conv, linear, norm, residual, concat, split,
depthwise, squeeze-excitation and attention blocks).

1. Pruning at any ratio gives a model that runs with unchanged output shape.
2. Zero-group invariance: zero the member slices of chosen channels, then removing them
   leaves the outputs unchanged (max abs diff < 1e-5).
"""

import random

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch import nn

import prunekit
from prunekit.graph import build_groups
from prunekit.surgery import remove_channels


class Conv(nn.Module):
    def __init__(self, c_in, c_out, bn):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.bn = nn.BatchNorm2d(c_out) if bn else nn.Identity()

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Residual(nn.Module):
    def __init__(self, c, inner):
        super().__init__()
        self.a = Conv(c, inner, True)
        self.b = nn.Conv2d(inner, c, 1)

    def forward(self, x):
        return x + self.b(self.a(x))


class Concat(nn.Module):
    def __init__(self, c, a, b):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, a, 1), Conv(c, b, False)

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


class Split(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c // 2, c // 2, 3, padding=1)

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return torch.cat([b, F.relu(self.conv(a))], dim=1)


class Depthwise(nn.Module):
    def __init__(self, c, mult, gn):
        super().__init__()
        self.dw = nn.Conv2d(c, c * mult, 3, padding=1, groups=c)
        self.norm = nn.GroupNorm(c, c * mult) if gn else nn.BatchNorm2d(c * mult)

    def forward(self, x):
        return F.relu(self.norm(self.dw(x)))


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c, r), nn.Linear(r, c)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * s[:, :, None, None]


class Attention(nn.Module):
    def __init__(self, c, heads, kv, hd):
        super().__init__()
        self.hd = hd
        self.q, self.k = nn.Linear(c, heads * hd), nn.Linear(c, kv * hd)
        self.v, self.o = nn.Linear(c, kv * hd), nn.Linear(heads * hd, c)

    def forward(self, x):
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        q, k, v = (p(t).view(n, h * w, -1, self.hd).transpose(1, 2)
                   for p in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        y = self.o(y.transpose(1, 2).reshape(n, h * w, -1))
        return x + y.transpose(1, 2).reshape(n, c, h, w)


def build(kinds, seed):
    rng = random.Random(seed)
    c, layers = 6, [Conv(3, 6, True)]
    for kind in kinds:
        if kind == "conv":
            layers.append(Conv(c, c := rng.choice([4, 6, 8]), rng.random() < 0.5))
        elif kind == "res":
            layers.append(Residual(c, rng.choice([3, 5])))
        elif kind == "cat":
            a, b = rng.choice([2, 3]), rng.choice([2, 4])
            layers.append(Concat(c, a, b))
            c = a + b
        elif kind == "split" and c % 2 == 0:
            layers.append(Split(c))
        elif kind == "dw":
            mult = rng.choice([1, 2])
            layers.append(Depthwise(c, mult, rng.random() < 0.5))
            c *= mult
        elif kind == "se":
            layers.append(SE(c, rng.choice([2, 3])))
        elif kind == "attn":
            kv = rng.choice([1, 2])
            layers.append(Attention(c, kv * rng.choice([1, 2]), kv, rng.choice([2, 3])))
    torch.manual_seed(seed)
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 3))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


KINDS = st.lists(st.sampled_from(["conv", "res", "cat", "split", "dw", "se", "attn"]),
                 min_size=1, max_size=5)
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate],  # no minutes-long shrinking
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(kinds=KINDS, seed=st.integers(0, 10_000), ratio=st.floats(0.0, 0.95))
def test_any_ratio_runs(kinds, seed, ratio):
    model = build(kinds, seed)
    x = torch.randn(2, 3, 4, 4)
    shape = model(x).shape
    res = prunekit.prune(model, x, ratio=ratio, importance="l1")
    assert model(x).shape == shape
    assert res.macs_after <= res.macs_before


def _zero(model, group, channels):
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    with torch.no_grad():
        for m in group.members:
            idx = [i for c in channels for i in m.index[c]]
            if idx:
                tensors[m.param].index_fill_(m.dim, torch.tensor(idx), 0.0)


@SETTINGS
@given(kinds=KINDS, seed=st.integers(0, 10_000), data=st.data())
def test_zero_groups_are_free(kinds, seed, data):
    model = build(kinds, seed)
    x = torch.randn(2, 3, 4, 4)
    gs = build_groups(model, x)
    removal = {}
    for g in gs.groups:
        if g.prunable and data.draw(st.booleans()):
            chans = data.draw(st.lists(st.integers(0, g.size - 1), min_size=1, unique=True))
            keep_all = [m for m in g.members if all(not m.index[c] or c in chans
                                                    for c in range(g.size))
                        and any(m.index[c] for c in range(g.size))]
            if len(chans) < g.size and not keep_all:
                removal[g.id] = chans
    for gid, chans in removal.items():
        _zero(model, gs.by_id()[gid], chans)
    before = model(x)
    remove_channels(model, gs, removal, x)
    after = model(x)
    assert (before - after).abs().max().item() < 1e-5
