"""Lottery ticket: rewinding semantics, schedule of rounds, random-reinit control."""

import pytest
import torch
from methods_helpers import digit_mlp as _net

from prunekit.methods import FitConfig, get_masks, lottery_ticket, magnitude_masks, sparsity_of
from prunekit.methods.lottery import reinitialize, rewind, snapshot


def test_without_training_the_ticket_is_the_init_with_init_magnitude_masks(digits):
    model = _net()
    init = snapshot(model)
    expected = magnitude_masks(model, 0.75)
    res = lottery_ticket(model, digits[0], 0.75, rounds=1, config=FitConfig(epochs=0),
                         control=False)
    for name, mask in expected.items():
        assert torch.equal(res.masks[name], mask)
    for name, value in snapshot(model).items():
        assert torch.equal(value, init[name]), name  # rewound to iteration 0


def test_rewind_to_step_k_and_control(digits):
    train, test = digits
    model = _net()
    cfg = FitConfig(epochs=1, batch_size=64, lr=1e-2, progress=False)
    res = lottery_ticket(model, train, 0.9, rounds=2, config=cfg, rewind_step=3, test=test)
    assert [r["sparsity"] for r in res.rounds] == pytest.approx([1 - 0.1**0.5, 0.9], abs=1e-3)
    assert sparsity_of(model) == pytest.approx(0.9, abs=1e-3)
    assert res.ticket_accuracy > 0.5 and res.reinit_accuracy is not None
    with pytest.raises(ValueError, match="beyond"):
        lottery_ticket(_net(), train, 0.5, rounds=1, config=cfg, rewind_step=10_000)


def test_rewind_and_reinit_keep_masks():
    model = _net()
    state = snapshot(model)
    magnitude_masks(model, 0.5)
    from prunekit.methods import magnitude_prune

    magnitude_prune(model, 0.5)
    masks = get_masks(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    rewind(model, state)
    assert all(torch.equal(v, state[k]) for k, v in snapshot(model).items())
    reinitialize(model, seed=3)
    assert get_masks(model).keys() == masks.keys()
    assert all(torch.equal(get_masks(model)[k], masks[k]) for k in masks)
    assert not torch.equal(snapshot(model)["1.weight"], state["1.weight"])
