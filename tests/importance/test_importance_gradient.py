"""taylor and fisher/obd against autograd computed by hand; state and caching guarantees."""

from __future__ import annotations

import copy

import pytest
import torch
from importance_models import assert_unchanged, conv1_group, conv2_group, snapshot
from torch import nn

from prunekit.importance import ImportanceContext, get, score_groups

CONV1_PARAMS = {"conv1.weight": 0, "conv1.bias": 0, "bn1.weight": 0, "bn1.bias": 0,
                "conv2.weight": 1}


def labelled_batches(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    return [(torch.randn(4, 3, 4, 4, generator=g), torch.randint(0, 5, (4,), generator=g))
            for _ in range(n)]


def per_batch_grads(model: nn.Module, batches, loss_fn) -> list[dict[str, torch.Tensor]]:
    """Reference: gradient of every parameter for every batch, on an eval-mode copy."""
    ref = copy.deepcopy(model).eval()
    out = []
    for inputs, target in batches:
        ref.zero_grad()
        loss_fn(ref(inputs), target).backward()
        out.append({n: p.grad.clone() for n, p in ref.named_parameters()})
    return out


def per_channel(tensors: dict[str, torch.Tensor], c: int) -> torch.Tensor:
    """Sum over conv1_group's parameter slices of channel c."""
    return sum(t.select(CONV1_PARAMS[n], c).sum() for n, t in tensors.items()
               if n in CONV1_PARAMS)


def test_taylor_matches_autograd(convnet):
    batches, loss_fn = labelled_batches(), nn.CrossEntropyLoss()
    grads = per_batch_grads(convnet, batches, loss_fn)
    mean = {n: sum(g[n] for g in grads) / len(grads) for n in grads[0]}
    params = dict(convnet.named_parameters())
    wg = {n: params[n].detach() * mean[n] for n in CONV1_PARAMS}
    expected = torch.stack([per_channel(wg, c).abs() for c in range(6)]).double()
    ctx = ImportanceContext(batches=batches, loss_fn=loss_fn)
    assert torch.allclose(get("taylor")(convnet, conv1_group(), ctx), expected, rtol=1e-4,
                          atol=1e-9)


def test_taylor_without_loss_uses_output_energy(convnet, images):
    grads = per_batch_grads(convnet, [(images, None)], lambda out, _: out.pow(2).mean())
    params = dict(convnet.named_parameters())
    wg = {n: params[n].detach() * grads[0][n] for n in CONV1_PARAMS}
    expected = torch.stack([per_channel(wg, c).abs() for c in range(6)]).double()
    scores = get("taylor")(convnet, conv1_group(), ImportanceContext(example_inputs=images))
    assert torch.allclose(scores, expected, rtol=1e-4, atol=1e-9)


def test_fisher_is_half_w2_times_mean_squared_grad(convnet):
    batches, loss_fn = labelled_batches(), nn.CrossEntropyLoss()
    grads = per_batch_grads(convnet, batches, loss_fn)
    fisher = {n: sum(g[n] ** 2 for g in grads) / len(grads) for n in grads[0]}
    params = dict(convnet.named_parameters())
    w2f = {n: params[n].detach() ** 2 * fisher[n] for n in CONV1_PARAMS}
    expected = 0.5 * torch.stack([per_channel(w2f, c) for c in range(6)]).double()
    ctx = ImportanceContext(batches=iter(batches), loss_fn=loss_fn)  # a one-shot iterator
    assert torch.allclose(get("fisher")(convnet, conv1_group(), ctx), expected, rtol=1e-4)
    assert torch.equal(get("obd")(convnet, conv1_group(), ctx),
                       get("fisher")(convnet, conv1_group(), ctx))


def test_model_state_is_restored(convnet, images):
    convnet.train()
    convnet.conv2.weight.requires_grad_(False)           # a frozen parameter
    convnet.fc.weight.grad = torch.full_like(convnet.fc.weight, 3.0)  # a user's pending grad
    before = snapshot(convnet)
    ctx = ImportanceContext(example_inputs=images)
    with torch.no_grad():                                 # also works under no_grad
        scores = score_groups(convnet, [conv1_group(), conv2_group()], "taylor", ctx)
    assert scores["conv1"].abs().sum() > 0
    assert scores["conv2"].abs().sum() > 0               # frozen conv2 still gets gradients
    assert_unchanged(convnet, before)                     # incl. BN running stats (eval mode)


def test_state_is_restored_when_the_forward_fails(convnet):
    before = snapshot(convnet)
    ctx = ImportanceContext(example_inputs=torch.randn(2, 7, 4, 4))  # wrong channel count
    with pytest.raises(RuntimeError):
        get("fisher")(convnet, conv1_group(), ctx)
    assert_unchanged(convnet, before)


class CountingNet(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def prefixed(group):
    group = copy.deepcopy(group)
    for m in group.members:
        m.param = "inner." + m.param
    return group


def test_gradients_are_computed_once_per_context(convnet):
    model = CountingNet(convnet)
    batches = labelled_batches(3)
    ctx = ImportanceContext(batches=batches, loss_fn=nn.CrossEntropyLoss())
    groups = [prefixed(conv1_group()), prefixed(conv2_group())]
    first = score_groups(model, groups, "taylor", ctx)
    score_groups(model, groups, {"fisher": 1.0, "taylor": 1.0}, ctx)
    assert model.calls == 3                               # one pass over 3 batches in total
    with torch.no_grad():                                 # an optimizer-like in-place update
        convnet.conv1.weight.mul_(0.5)
    second = score_groups(model, groups, "taylor", ctx)
    assert model.calls == 6                               # the cache noticed the change
    assert not torch.allclose(first["conv1"], second["conv1"])


def test_bad_calibration_data_is_reported(convnet, images):
    with pytest.raises(ValueError, match="needs batches"):
        get("taylor")(convnet, conv1_group(),
                      ImportanceContext(example_inputs=images, loss_fn=nn.CrossEntropyLoss()))
    with pytest.raises(ValueError, match="pair"):
        get("taylor")(convnet, conv1_group(),
                      ImportanceContext(batches=[images], loss_fn=nn.CrossEntropyLoss()))
    with pytest.raises(ValueError, match="empty"):
        get("taylor")(convnet, conv1_group(), ImportanceContext(batches=[]))
