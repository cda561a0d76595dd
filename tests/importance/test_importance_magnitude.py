"""l1, l2, bn_scale against direct computations on the member slices."""

from __future__ import annotations

import pytest
import torch
from importance_models import Group, Member, conv1_group, conv2_group, head_group, one_each
from torch import nn

from prunekit.importance import ImportanceContext, get

CONV1_PARAMS = ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias"]


def conv1_slices(model, c: int) -> list[torch.Tensor]:
    """Channel c's slices of every *parameter* member of conv1_group (no running stats)."""
    sd = dict(model.named_parameters())
    return [sd[name][c].flatten() for name in CONV1_PARAMS] + [sd["conv2.weight"][:, c].flatten()]


def test_l2_is_norm_of_concatenated_slices(convnet):
    scores = get("l2")(convnet, conv1_group(), None)
    expected = torch.stack(
        [torch.linalg.norm(torch.cat(conv1_slices(convnet, c))) for c in range(6)]
    )
    assert scores.shape == (6,)
    assert torch.allclose(scores, expected.double(), rtol=1e-6)


def test_l1_is_sum_of_abs_over_slices(convnet):
    scores = get("l1")(convnet, conv1_group(), None)
    expected = torch.stack([torch.cat(conv1_slices(convnet, c)).abs().sum() for c in range(6)])
    assert torch.allclose(scores, expected.double(), rtol=1e-6)


def test_running_statistics_do_not_count(convnet):
    before = get("l2")(convnet, conv1_group(), None)
    with torch.no_grad():
        convnet.bn1.running_var.mul_(100.0)
    assert torch.equal(get("l2")(convnet, conv1_group(), None), before)


def test_flattened_member_sums_all_its_indices(convnet):
    scores = get("l2")(convnet, conv2_group(), None)
    p = dict(convnet.named_parameters())
    expected = torch.stack([
        torch.linalg.norm(torch.cat([p["conv2.weight"][c].flatten(), p["bn2.weight"][c:c + 1],
                                     p["bn2.bias"][c:c + 1],
                                     p["fc.weight"][:, c * 16:(c + 1) * 16].flatten()]))
        for c in range(4)
    ])
    assert torch.allclose(scores, expected.double(), rtol=1e-6)


def test_head_channels_span_several_indices(headnet):
    scores = get("l2")(headnet, head_group(), None)
    w, b, o = headnet.proj.weight, headnet.proj.bias, headnet.out.weight
    expected = torch.stack([
        torch.linalg.norm(torch.cat([w[h * 4:(h + 1) * 4].flatten(), b[h * 4:(h + 1) * 4],
                                     o[:, h * 4:(h + 1) * 4].flatten()]))
        for h in range(3)
    ])
    assert torch.allclose(scores, expected.double(), rtol=1e-6)


def test_normalize_members_gives_each_member_equal_say(convnet):
    scores = get("l2", normalize_members=True)(convnet, conv1_group(), None)
    p = dict(convnet.named_parameters())
    slices = [p[n].detach().flatten(1) if p[n].dim() > 1 else p[n].detach()[:, None]
              for n in CONV1_PARAMS]
    slices.append(p["conv2.weight"].detach().transpose(0, 1).flatten(1))
    per_member = [s.double().pow(2).sum(1) for s in slices]
    expected = sum(v / v.mean() for v in per_member).sqrt()
    assert torch.allclose(scores, expected, rtol=1e-6)
    # a member 1000x larger no longer decides the ranking alone
    with torch.no_grad():
        convnet.conv2.weight.mul_(1000.0)
    assert torch.allclose(get("l2", normalize_members=True)(convnet, conv1_group(), None),
                          scores, rtol=1e-6)


def test_bn_scale_is_abs_gamma(convnet):
    scores = get("bn_scale")(convnet, conv1_group(), ImportanceContext())
    assert torch.allclose(scores, convnet.bn1.weight.detach().abs().double())


class NamedLikeANorm(nn.Module):
    """A Linear called 'norm' (not a norm) and a third-party RMSNorm look-alike."""

    class MyRMSNorm(nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.linspace(-2.0, 1.0, n))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.Linear(4, 4)
        self.rms = self.MyRMSNorm(4)

    def forward(self, x):
        return self.rms(self.norm(x))


def test_bn_scale_decides_by_owning_module_type():
    model = NamedLikeANorm()
    idx = one_each(4)
    fake = Group("fake", 4, [Member("norm.weight", 0, idx), Member("norm.bias", 0, idx)])
    ctx = ImportanceContext()
    assert torch.allclose(get("bn_scale")(model, fake, ctx), get("l2")(model, fake, ctx))
    assert any("bn_scale" in note for note in ctx.notes)
    with pytest.raises(ValueError, match="no normalization scale"):
        get("bn_scale", fallback=None)(model, fake, ctx)
    real = Group("rms", 4, [Member("norm.weight", 0, idx), Member("rms.weight", 0, idx)])
    assert torch.allclose(get("bn_scale")(model, real, ctx),
                          torch.linspace(-2.0, 1.0, 4).abs().double())


def test_bad_members_are_reported(convnet):
    idx = one_each(6)
    with pytest.raises(ValueError, match="not a parameter or buffer"):
        get("l2")(convnet, Group("g", 6, [Member("conv9.weight", 0, idx)]), None)
    with pytest.raises(ValueError, match="5 index lists, group size is 6"):
        get("l2")(convnet, Group("g", 6, [Member("conv1.weight", 0, idx[:5])]), None)
    with pytest.raises(ValueError, match="out of range"):
        get("l2")(convnet, Group("g", 6, [Member("conv1.weight", 2, idx)]), None)
    with pytest.raises(ValueError, match="dim 7 out of range"):
        get("l2")(convnet, Group("g", 6, [Member("conv1.weight", 7, idx)]), None)
    with pytest.raises(ValueError, match="no parameter members"):
        get("l2")(convnet, Group("g", 6, [Member("bn1.running_mean", 0, idx)]), None)


def test_permuted_and_partial_indices(convnet):
    """Channel c owns index[c], in any order; an empty list (one side of a concat) owns none."""
    order = [5, 0, 3, 1, 4, 2]
    partial = [[4], [], [0, 1], [], [2], [3, 5]]
    group = Group("g", 6, [Member("conv1.weight", 0, [[i] for i in order]),
                           Member("conv2.weight", 1, partial)])
    w1, w2 = convnet.conv1.weight.detach(), convnet.conv2.weight.detach()
    expected = torch.stack([
        torch.linalg.norm(torch.cat([w1[order[c]].flatten()] +
                                    [w2[:, i].flatten() for i in partial[c]]))
        for c in range(6)
    ])
    assert torch.allclose(get("l2")(convnet, group, None), expected.double(), rtol=1e-6)
