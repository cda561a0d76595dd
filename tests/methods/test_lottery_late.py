"""Lottery ticket: late rewinding with many rounds, LAMP scope, dense baseline, bad input."""

import pytest
import torch
from methods_helpers import digit_mlp as _net
from support import same_state, state_of

from prunekit.methods import FitConfig, evaluate, fit, lottery_ticket
from prunekit.methods.lottery import snapshot


def test_late_rewind_lamp_rounds_and_dense_baseline(digits):
    train, test = digits
    cfg = FitConfig(epochs=2, batch_size=64, lr=1e-2, progress=False)
    dense = _net()
    fit(dense, train, cfg)
    res = lottery_ticket(_net(), train, 0.9, rounds=4, config=cfg, rewind_step=5, test=test,
                         scope="lamp")
    # the first run is the dense baseline trained with the same config from the same init
    assert res.dense_accuracy == pytest.approx(evaluate(dense, test))
    kept = [1 - r["sparsity"] for r in res.rounds]
    assert kept == pytest.approx([0.1 ** (r / 4) for r in range(1, 5)], abs=2e-3)
    # LAMP never empties a layer: the output layer keeps weights at 10 %
    assert res.masks["3.weight"].any() and res.masks["1.weight"].any()
    assert res.ticket_accuracy > 0.8 and res.reinit_accuracy is not None


def test_rewind_point_is_the_state_after_k_steps(digits):
    from prunekit.methods.lottery import _rewind_point

    train, _ = digits
    cfg = FitConfig(epochs=1, batch_size=64, lr=1e-2, progress=False)
    holder: dict = {}
    fit(_net(), train, cfg, on_step=_rewind_point(3, holder))
    manual = _net()
    steps = []
    fit(manual, train, cfg, on_step=lambda s, m: steps.append(snapshot(m)) if s == 3 else None)
    assert steps and all(torch.equal(holder["state"][k], v) for k, v in steps[0].items())


def test_bad_arguments_leave_the_model_untouched(digits):
    train, _ = digits
    cfg = FitConfig(epochs=1, batch_size=64, progress=False)
    model = _net()
    before = state_of(model)
    for kwargs, match in [({"scope": "random"}, "scope"), ({"rounds": 0}, "rounds"),
                          ({"final": 1.0}, "final"), ({"rewind_step": -1}, "rewind_step"),
                          ({"rewind_step": 10_000}, "beyond")]:
        args = {"final": 0.5, "rounds": 1, **kwargs}
        with pytest.raises(ValueError, match=match):
            lottery_ticket(model, train, config=cfg, **args)
        assert same_state(state_of(model), before)
