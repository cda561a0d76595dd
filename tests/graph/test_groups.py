"""Coupled groups on small hand-built models: members, index maps, barriers."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunekit.graph import build_groups


def _members(group):
    return {(m.param, m.dim): m.index for m in group.members}


def _group_with(gs, param, dim):
    found = [g for g in gs.groups if (param, dim) in _members(g)]
    assert len(found) == 1, f"{param}:{dim} in {len(found)} groups"
    return found[0]


class ConvBNConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 5 * 5, 2)

    def forward(self, x):
        x = self.conv2(F.relu(self.bn(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


def test_chain_couples_producer_norm_and_consumer():
    gs = build_groups(ConvBNConv(), torch.randn(1, 3, 5, 5))
    g = _group_with(gs, "conv1.weight", 0)
    mem = _members(g)
    assert g.size == 8 and g.id == "conv1"
    for key in [("conv1.weight", 0), ("conv1.bias", 0), ("bn.weight", 0), ("bn.bias", 0),
                ("bn.running_mean", 0), ("bn.running_var", 0), ("conv2.weight", 1)]:
        assert mem[key] == [[c] for c in range(8)], key
    assert ("conv1", 1) in g.sources and ("bn", 1) in g.sources


def test_flatten_maps_channel_to_block_of_linear_inputs():
    gs = build_groups(ConvBNConv(), torch.randn(1, 3, 5, 5))
    g = _group_with(gs, "conv2.weight", 0)
    assert _members(g)[("fc.weight", 1)] == [list(range(c * 25, c * 25 + 25)) for c in range(4)]


def test_inputs_and_outputs_are_never_groups():
    gs = build_groups(ConvBNConv(), torch.randn(1, 3, 5, 5))
    keys = {k for g in gs.groups for k in _members(g)}
    assert ("conv1.weight", 1) not in keys  # model input channels
    assert ("fc.weight", 0) not in keys and ("fc.bias", 0) not in keys  # model output
    assert ("conv1.weight", 2) not in keys  # kernel dims


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 1)
        self.a = nn.Conv2d(6, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.b(F.relu(self.a(x)))
        return self.head(x)


def test_residual_add_merges_stream_channels():
    gs = build_groups(Residual(), torch.randn(1, 3, 4, 4))
    g = _group_with(gs, "stem.weight", 0)
    mem = _members(g)
    assert {("b.weight", 0), ("a.weight", 1), ("head.weight", 1), ("b.bias", 0)} <= set(mem)
    assert mem[("b.weight", 0)] == [[c] for c in range(6)]
    assert _group_with(gs, "a.weight", 0) is not g


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 5, 1)
        self.c = nn.Conv2d(9, 2, 1)

    def forward(self, x):
        return self.c(torch.cat([self.a(x), self.b(x)], dim=1))


def test_concat_offsets_consumer_indices():
    gs = build_groups(Concat(), torch.randn(1, 3, 4, 4))
    g = _group_with(gs, "a.weight", 0)
    mem = _members(g)
    assert g.size == 9
    assert mem[("c.weight", 1)] == [[c] for c in range(9)]
    assert mem[("a.weight", 0)][:4] == [[0], [1], [2], [3]] and mem[("a.weight", 0)][4:] == [[]] * 5
    assert mem[("b.weight", 0)][4:] == [[c] for c in range(5)]


class Heads(nn.Module):
    """Hand-written attention with 2 query heads per kv head (GQA)."""

    def __init__(self, dim=8, heads=4, kv=2, hd=3):
        super().__init__()
        self.heads, self.kv, self.hd = heads, kv, hd
        self.q = nn.Linear(dim, heads * hd)
        self.k = nn.Linear(dim, kv * hd)
        self.v = nn.Linear(dim, kv * hd)
        self.o = nn.Linear(heads * hd, dim)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q(x).view(b, t, -1, self.hd).transpose(1, 2)
        k = self.k(x).view(b, t, -1, self.hd).transpose(1, 2)
        v = self.v(x).view(b, t, -1, self.hd).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        return self.o(y.transpose(1, 2).reshape(b, t, -1))


def test_gqa_unit_is_one_kv_head_with_its_query_heads():
    gs = build_groups(Heads(), torch.randn(1, 5, 8))
    g = _group_with(gs, "k.weight", 0)
    mem = _members(g)
    assert g.size == 2
    assert mem[("k.weight", 0)] == [[0, 1, 2], [3, 4, 5]]
    assert mem[("q.weight", 0)] == [list(range(0, 6)), list(range(6, 12))]
    assert mem[("o.weight", 1)] == [list(range(0, 6)), list(range(6, 12))]


class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 1)
        self.b = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        y = self.a(x)
        n, c, h, w = y.shape
        y = y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.b(y)


def test_channel_shuffle_pairs_same_channel_of_each_group():
    gs = build_groups(Shuffle(), torch.randn(1, 3, 4, 4))
    g = _group_with(gs, "a.weight", 0)
    mem = _members(g)
    assert g.size == 3
    assert mem[("a.weight", 0)] == [[0, 3], [1, 4], [2, 5]]
    # after the shuffle, channel j of group i sits at j*2 + i
    assert mem[("b.weight", 1)] == [[0, 1], [2, 3], [4, 5]]


class Unknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(4, 4, 1)
        self.c = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        y = self.a(x)
        y = torch.fft.fft(y, dim=1).real  # mixes channels: no rule
        return self.c(F.relu(self.b(y)))


def test_unknown_op_is_a_reported_barrier():
    gs = build_groups(Unknown(), torch.randn(1, 3, 4, 4))
    keys = {k for g in gs.groups for k in _members(g)}
    assert ("a.weight", 0) not in keys and ("b.weight", 1) not in keys
    assert ("b.weight", 0) in keys  # past the barrier pruning goes on
    assert any("fft" in s["op"] and s["module"] == "" for s in gs.skipped)


class Scaled(nn.Module):
    """A per-channel scale held as a buffer (not cut by surgery) or as a parameter."""

    def __init__(self, as_buffer: bool) -> None:
        super().__init__()
        self.a, self.c = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1)
        scale = torch.rand(4, 1, 1)
        if as_buffer:
            self.register_buffer("scale", scale)
        else:
            self.scale = nn.Parameter(scale)

    def forward(self, x):
        return self.c(F.relu(self.a(x)) * self.scale)


def test_a_buffer_that_fixes_channels_is_reported_and_a_parameter_is_cut():
    x = torch.randn(1, 3, 4, 4)
    gs = build_groups(Scaled(as_buffer=True), x)
    assert not gs.groups
    assert [(s["op"], s["module"]) for s in gs.skipped] == [("mul", "")]
    assert "registered buffer scale" in gs.skipped[0]["reason"]
    gs = build_groups(Scaled(as_buffer=False), x)
    assert not gs.skipped
    assert ("scale", 0) in {k for g in gs.groups for k in _members(g)}


def test_works_under_no_grad_with_frozen_params_and_restores_mode():
    m = ConvBNConv().train()
    for p in m.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with torch.no_grad():
        gs = build_groups(m, torch.randn(2, 3, 5, 5))
    assert len(gs.groups) == 2 and m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_bad_inputs_raise():
    m = ConvBNConv()
    with pytest.raises(TypeError):
        build_groups("not a model", torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="do not run"):
        build_groups(m, torch.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match="no module named"):
        build_groups(m, torch.randn(1, 3, 5, 5), ignore=["nope"])


def test_ignore_keeps_module_whole():
    m = ConvBNConv()
    gs = build_groups(m, torch.randn(1, 3, 5, 5), ignore=[m.conv2])
    keys = {k for g in gs.groups for k in _members(g)}
    assert not any(p.startswith("conv2.") for p, _ in keys)
    assert ("conv1.weight", 0) not in keys  # coupled with conv2's inputs


def test_channel_norms_sum_over_members():
    m = ConvBNConv()
    gs = build_groups(m, torch.randn(1, 3, 5, 5))
    g = _group_with(gs, "conv1.weight", 0)
    got = g.channel_norms(m)
    ref = torch.zeros(8, dtype=torch.float64)
    for mem in g.members:
        t = dict(m.named_parameters()).get(mem.param)
        if t is None:
            t = dict(m.named_buffers())[mem.param]
        ref += t.detach().double().movedim(mem.dim, 0).reshape(8, -1).pow(2).sum(1)
    torch.testing.assert_close(got, ref.sqrt())


class LayerScale(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 1)
        self.conv = nn.Conv2d(6, 6, 1)
        self.gamma = nn.Parameter(torch.ones(6))
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.conv(x).mul(self.gamma.reshape(1, -1, 1, 1))
        return self.head(x)


def test_per_channel_vector_reshaped_for_broadcast_stays_per_channel():
    gs = build_groups(LayerScale(), torch.randn(1, 3, 4, 4))
    g = _group_with(gs, "stem.weight", 0)
    assert g.size == 6 and _members(g)[("gamma", 0)] == [[c] for c in range(6)]
