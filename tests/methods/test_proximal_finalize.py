"""``ProximalGroupLasso.finalize`` says what it cut: zero channels leave the outputs as they
were; non-zero channels cut to meet a budget (or rounding) are counted, their norm given,
and the change of the outputs measured — in ``plan.notes`` and ``opt.finalize_report``."""

import copy

import pytest
import torch
import torch.nn.functional as F
from methods_helpers import SmallCNN, mlp

from prunekit.graph import build_groups
from prunekit.methods import Budget, ProximalGroupLasso


def _train(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def _data(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(32, 1, 8, 8, generator=gen), torch.randint(0, 10, (32,), generator=gen)


def test_zero_channels_only_note_says_outputs_unchanged():
    model = mlp()
    x, y = _data()
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.5), model,
                             build_groups(model, x), lam=0.3, example_inputs=x)
    _train(model, opt, x, y, 10)
    zeros = sum(map(len, opt.zero_groups().values()))
    assert zeros > 0
    plan = opt.finalize()
    report = opt.finalize_report
    assert report.removed == zeros and report.nonzero == 0 and report.nonzero_norm == 0
    assert not report.outputs_changed and report.max_abs_diff < 1e-5
    assert len(plan.notes) == 1 and "all exactly zero" in plan.notes[0]
    assert "unchanged" in plan.notes[0]


def test_budget_top_up_of_nonzero_channels_is_reported_with_the_output_change():
    model = SmallCNN()
    x, y = _data(1)
    # one step at a tiny λ: nothing reaches zero, so the 30 % MAC budget is met only by
    # cutting live channels at finalize
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.05), model,
                             build_groups(model, x), lam=1e-6, example_inputs=x,
                             budget=Budget(fraction=0.3, kind="macs"))
    _train(model, opt, x, y, 1)
    assert not opt.zero_groups()
    planned = opt.removal_plan()
    by_id = {g.id: g for g in opt.groups}
    from prunekit.methods.proximal import channel_norms

    norm = sum(float(channel_norms(by_id[gid])[ch].double().pow(2).sum())
               for gid, ch in planned.items()) ** 0.5
    model.eval()
    with torch.no_grad():
        before = model(x)
    plan = opt.finalize()
    with torch.no_grad():
        after = model(x)
    report = opt.finalize_report
    n_cut = sum(map(len, planned.values()))
    assert report.removed == report.nonzero == n_cut > 0
    assert report.nonzero_norm == pytest.approx(norm, rel=1e-9)
    diff = float((after - before).abs().max())
    assert diff > 1e-3  # live channels went: the outputs moved
    assert report.max_abs_diff == pytest.approx(diff, rel=1e-5)
    assert report.rel_diff == pytest.approx(diff / float(before.abs().max()), rel=1e-5)
    (note,) = plan.notes
    assert f"removed {n_cut} NON-ZERO channel(s) to meet the budget" in note
    assert f"max |Δ| {report.max_abs_diff:.3g}" in note


def test_restore_is_named_and_failed_input_changes_nothing():
    model = mlp()
    x, y = _data(2)
    dense = copy.deepcopy(model.state_dict())
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.5), model,
                             build_groups(model, x), lam=0.3, example_inputs=x)
    _train(model, opt, x, y, 10)
    plan = opt.finalize(restore=dense)
    assert opt.finalize_report.restored and opt.finalize_report.outputs_changed
    assert "weights were restored before the cut" in plan.notes[-1]
