"""Prune-and-retrain rounds: cosine LR rewinding, weight averaging, exact sparsity."""

import pytest
import torch
from support import same_state, state_of
from torch import nn

from prunekit.data import load_digits_tensors
from prunekit.methods import (
    FitConfig,
    evaluate,
    fit,
    get_masks,
    magnitude_prune,
    sparsity_of,
)
from prunekit.methods.retrain import (
    CosineLR,
    RetrainConfig,
    WeightAverage,
    chain,
    prune_retrain,
)


def _net(seed=0, bn=False):
    torch.manual_seed(seed)
    extra = [nn.BatchNorm1d(32)] if bn else []
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), *extra, nn.ReLU(), nn.Linear(32, 10))


@pytest.fixture(scope="module")
def digits():
    xtr, ytr, xte, yte = load_digits_tensors(seed=0)
    return (xtr, ytr), (xte, yte)


def test_cosine_by_hand():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=9.0)
    cos = CosineLR(opt, total=5, lr_max=1.0)
    assert [cos.lr_at(t) for t in range(1, 6)] == pytest.approx([1, 0.8535534, 0.5, 0.1464466,
                                                                 0])
    warm = CosineLR(opt, total=5, lr_max=1.0, lr_min=0.1, warmup=2)
    assert [warm.lr_at(t) for t in range(1, 7)] == pytest.approx([1 / 3, 2 / 3, 1, 0.55, 0.1,
                                                                  0.1])
    with pytest.raises(ValueError, match="warmup"):
        CosineLR(opt, total=3, lr_max=1.0, warmup=3)
    with pytest.raises(ValueError, match="lr_min"):
        CosineLR(opt, total=3, lr_max=1.0, lr_min=2.0)


def test_cosine_sets_the_rate_each_fit_step_uses(digits):
    model = _net()
    config = FitConfig(epochs=1, batch_size=256, lr=0.5, progress=False)
    opt = torch.optim.SGD(model.parameters(), lr=123.0)
    n_steps = -(-len(digits[0][1]) // 256)
    cos = CosineLR(opt, total=n_steps, lr_max=0.01, lr_min=0.001)
    cos.start()
    used = [opt.param_groups[0]["lr"]]
    fit(model, digits[0], config, optimizer=opt,
        on_step=chain(None, cos, lambda step, m: used.append(opt.param_groups[0]["lr"])))
    assert used[:n_steps] == pytest.approx([cos.lr_at(t) for t in range(1, n_steps + 1)])
    assert used[0] == pytest.approx(0.01) and used[n_steps - 1] == pytest.approx(0.001)


def test_weight_average_is_the_mean_of_the_sampled_iterates():
    model = nn.Linear(2, 1)
    avg = WeightAverage(model, start=2, every=2)
    seen = []
    for step in range(1, 8):
        with torch.no_grad():
            model.weight.fill_(float(step))
        avg(step, model)
        if step >= 2 and step % 2 == 0:
            seen.append(float(step))
    weight = model.weight
    assert avg.apply() == 3
    assert model.weight is weight  # same parameter object
    torch.testing.assert_close(model.weight, torch.full((1, 2), sum(seen) / len(seen)))
    with pytest.raises(ValueError, match="start"):
        WeightAverage(model, start=0)


@pytest.mark.parametrize("retrain", [
    RetrainConfig("lamp", "cosine"),
    RetrainConfig("global", "constant", average_fraction=0.5, average_every=2),
    RetrainConfig("lamp", "constant", prune_fraction=0.4, prune_every=3, average_fraction=0.3),
])
def test_rounds_land_on_the_target_and_train(digits, retrain):
    train, test = digits
    model = _net()
    config = FitConfig(epochs=4, batch_size=64, lr=1e-2, progress=False)
    fit(model, train, config)
    dense_acc = evaluate(model, test)
    assert prune_retrain(model, train, 0.8, config, retrain) == pytest.approx(0.8, abs=1e-3)
    first = get_masks(model)
    assert prune_retrain(model, train, 0.9, config, retrain) == pytest.approx(0.9, abs=1e-3)
    for name, mask in get_masks(model).items():
        assert not (mask & ~first[name]).any(), "masks only shrink"
    assert evaluate(model, test) > dense_acc - 0.1


def test_averaging_recomputes_batchnorm_statistics(digits):
    train, _ = digits
    model = _net(bn=True)
    config = FitConfig(epochs=1, batch_size=64, lr=1e-2, progress=False)
    prune_retrain(model, train, 0.5, config, RetrainConfig(average_fraction=1.0),
                  bn_data=train[0])
    bn = model[2]
    with torch.no_grad():
        hidden = model[1](model[0](train[0]))
    # update_bn: the equal-weight mean of the batch means (batches of 256)
    expected = torch.stack([h.mean(0) for h in torch.split(hidden, 256)]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected, rtol=1e-4, atol=1e-5)


def test_bad_input_leaves_the_model_as_it_was(digits):
    model = _net()
    magnitude_prune(model, 0.5)
    before = state_of(model)
    config = FitConfig(epochs=1, progress=False)
    with pytest.raises(ValueError, match="sparsity"):
        prune_retrain(model, digits[0], 0.3, config)  # below the current 0.5
    with pytest.raises(ValueError, match="sparsity"):
        prune_retrain(model, digits[0], 1.0, config)
    with pytest.raises(ValueError, match="no module"):
        prune_retrain(model, digits[0], 0.8, config, RetrainConfig(prune_fraction=0.5),
                      names=["9.weight"])
    assert same_state(state_of(model), before)
    assert sparsity_of(model) == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="scope"):
        RetrainConfig(scope="random")
    with pytest.raises(ValueError, match="lr_schedule"):
        RetrainConfig(lr_schedule="step")
