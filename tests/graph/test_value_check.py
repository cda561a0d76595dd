"""The value check after a cut: widths baked into views, norms over cut channels.

Every result either computes exactly what the original computes with the removed slices
zeroed (checked here independently, from the plan's cuts), or the group was left whole
and named in ``skipped``.
"""

import copy
import random

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support import assert_same_state, state_of
from torch import nn

import prunekit
from prunekit.graph import build_groups
from prunekit.surgery import ValueCheckError, remove_channels


class IssueNet(nn.Module):
    """The model of issue 22: ``view(B, 32, -1)`` bakes c2's width in."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)

    def forward(self, x):
        y = self.c2(torch.relu(self.c1(x)))
        return y.view(x.shape[0], 32, -1).mean(-1).sum(1, keepdim=True)


def test_issue_example_is_left_whole_and_named():
    torch.manual_seed(0)
    model, x = IssueNet().eval(), torch.randn(2, 3, 8, 8)
    original = copy.deepcopy(model)
    res = prunekit.prune(model, x, ratio=0.5)
    assert model.c2.out_channels == 32 and model.c1.out_channels == 8
    ref = _zeroed_copy(original, res.plan.cuts)
    assert torch.allclose(model(x), ref(x), rtol=1e-4, atol=1e-5)
    named = [s for s in res.skipped if s.get("group") == "c2"]
    assert named and "changes the outputs" in named[0]["reason"]


def test_remove_channels_raises_and_restores():
    torch.manual_seed(0)
    model, x = IssueNet().eval(), torch.randn(2, 3, 8, 8)
    gs = build_groups(model, x)
    before = state_of(model)
    with pytest.raises(ValueCheckError, match="relative error"):
        remove_channels(model, gs, {"c2": list(range(16))}, x)
    assert_same_state(state_of(model), before)
    plan = remove_channels(model, gs, {"c2": list(range(16))}, x, values=False)
    assert model.c2.out_channels == 16 and plan.cuts  # the shape-only check lets it through


class Block(nn.Module):
    def __init__(self, c_in, c_out, head):
        super().__init__()
        self.conv, self.bn, self.head, self.c = nn.Conv2d(c_in, c_out, 3, padding=1), \
            nn.BatchNorm2d(c_out), head, c_out
        self.fc = nn.Linear(c_out * 16, 3) if head == "flatten_linear" else None
        self.w = nn.Parameter(torch.randn(c_out, 3)) if head == "einsum_param" else None

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        b, c = y.shape[0], self.c  # c: the width baked in at construction
        if self.head == "view_sum":
            return y.view(b, c, -1).mean(-1).sum(1, keepdim=True)
        if self.head == "pairs":
            return y.view(b, c // 2, -1).mean(-1).sum(1, keepdim=True)
        if self.head == "permute_rows":
            return y.permute(0, 2, 3, 1).reshape(b, -1, c).amax(1).sum(1, keepdim=True)
        if self.head == "flatten_linear":
            return self.fc(y.reshape(b, -1))
        if self.head == "einsum_param":
            return torch.einsum("bchw,ck->bk", y, self.w)
        if self.head == "reshape_dynamic":  # not baked: follows the tensor
            return y.reshape(b, y.shape[1], -1).amax(-1).sum(1, keepdim=True)
        return y.transpose(1, 3).reshape(b, 16, c).sum(-1)  # "transpose_reshape"


HEADS = ["view_sum", "pairs", "permute_rows", "flatten_linear", "einsum_param",
         "reshape_dynamic", "transpose_reshape"]


def _model(widths, head, seed):
    torch.manual_seed(seed)
    layers, c = [], 3
    for w in widths[:-1]:
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU()]
        c = w
    model = nn.Sequential(*layers, Block(c, widths[-1], head)).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return model


def _zeroed_copy(model, cuts):
    ref = copy.deepcopy(model)
    tensors = {**dict(ref.named_parameters()), **dict(ref.named_buffers())}
    with torch.no_grad():
        for cut in cuts:
            tensors[cut.param].index_fill_(cut.dim, torch.tensor(cut.removed), 0.0)
    return ref


SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(widths=st.lists(st.sampled_from([4, 6, 8]), min_size=1, max_size=3),
       head=st.sampled_from(HEADS), seed=st.integers(0, 1000),
       ratio=st.sampled_from([0.25, 0.5, 0.75]))
def test_baked_widths_match_zeroed_original_or_are_named(widths, head, seed, ratio):
    model = _model(widths, head, seed)
    original = copy.deepcopy(model)
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    res = prunekit.prune(model, x, ratio=ratio)
    ref = _zeroed_copy(original, res.plan.cuts)
    with torch.no_grad():
        got, want = model(x), ref(x)
    assert got.shape == want.shape
    scale = want.abs().max().clamp_min(1e-6)
    assert ((got - want).abs().max() / scale).item() < 1e-4, (head, res.plan.groups)
    named = {s.get("group") for s in res.skipped}
    cut = set(res.plan.groups)
    gs = build_groups(original, x)
    for g in gs.groups:  # every prunable group is either cut or named
        if g.prunable and g.size * ratio >= 1:
            assert g.id in cut or g.id in named, (g.id, res.skipped)


@pytest.mark.parametrize("head", ["flatten_linear", "einsum_param", "reshape_dynamic"])
def test_layouts_the_graph_follows_are_cut(head):
    model = _model([6, 8], head, 0)
    x = torch.randn(2, 3, 4, 4)
    res = prunekit.prune(model, x, ratio=0.5)
    assert not [s for s in res.skipped if "group" in s], res.skipped
    assert res.macs_after < res.macs_before


@pytest.mark.parametrize("head", ["view_sum", "pairs", "permute_rows", "transpose_reshape"])
def test_baked_widths_are_caught(head):
    model = _model([6, 8], head, 0)
    x = torch.randn(2, 3, 4, 4)
    res = prunekit.prune(model, x, ratio=0.5)
    assert model[-1].conv.out_channels == 8  # the baked width kept its size
    assert any(s.get("group") == "2.conv" for s in res.skipped), res.skipped


class Norms(nn.Module):
    """Ops that count the channels they reduce over: the cut changes values by definition,
    the check compares against exactly that (no false alarm)."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 4)
        self.ln = nn.LayerNorm(8) if kind == "layer_norm" else nn.RMSNorm(8)
        self.gn = nn.GroupNorm(1, 8)

    def forward(self, x):
        h = self.a(x)
        if self.kind in ("layer_norm", "rms_norm"):
            h = self.ln(h)
        elif self.kind == "mean":
            h = h - h.mean(-1, keepdim=True) * h.var(-1, keepdim=True, unbiased=False)
        elif self.kind == "softmax":
            h = h.softmax(-1) * 3
        elif self.kind == "group_norm":
            h = self.gn(h[:, :, None]).squeeze(-1)
        return self.b(torch.tanh(h))


@pytest.mark.parametrize("kind", ["layer_norm", "rms_norm", "mean", "softmax", "group_norm"])
def test_width_ops_are_emulated_not_rejected(kind):
    torch.manual_seed(0)
    model, x = Norms(kind).eval(), torch.randn(5, 6)
    gs = build_groups(model, x)
    assert any(op.module in ("", "ln", "gn") for op in gs.width_ops)
    res = prunekit.prune(model, x, ratio=0.5)
    assert model.a.out_features == 4, res.skipped
    assert not [s for s in res.skipped if "group" in s]


def test_width_op_with_a_wrong_layout_is_still_caught():
    class Baked(Norms):
        def forward(self, x):  # x: (B, T, 6); LayerNorm, then 8 baked into a view
            h = self.ln(self.a(x))
            return h.view(x.shape[0], 8, -1).mean(-1).sum(1, keepdim=True)

    torch.manual_seed(0)
    model, x = Baked("layer_norm").eval(), torch.randn(2, 4, 6)
    res = prunekit.prune(model, x, ratio=0.5)
    assert model.a.out_features == 8
    assert any(s.get("group") == "a" for s in res.skipped), res.skipped


def test_multihead_attention_head_dim_cut_passes():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.mha, self.out = nn.Linear(4, 8), mha, nn.Linear(8, 3)

        def forward(self, x):
            h = self.inp(x)
            return self.out(self.mha(h, h, h, need_weights=False)[0])

    model, x = M().eval(), torch.randn(2, 5, 4)
    res = prunekit.prune(model, x, ratio=0.5)
    assert model.mha.embed_dim == 4, res.skipped


@pytest.mark.parametrize("seed", range(3))
def test_random_pairs_of_views(seed):
    """A baked reshape that happens to keep the layout (the cut keeps both halves) is
    either cut and right or named — never returned silently wrong."""
    rng = random.Random(seed)
    model = _model([rng.choice([4, 8])], "pairs", seed)
    original = copy.deepcopy(model)
    x = torch.randn(2, 3, 4, 4)
    res = prunekit.prune(model, x, ratio=0.5)
    ref = _zeroed_copy(original, res.plan.cuts)
    assert torch.allclose(model(x), ref(x), rtol=1e-4, atol=1e-5)
