"""Fine-tuning loop (exact resume), distillation, int8, pipeline, hybrid, soft pruning."""

import copy

import pytest
import torch
import torch.nn.functional as F
from methods_helpers import mlp, mlp_groups, slice_out
from torch import nn

from prunekit.data import load_digits_tensors
from prunekit.methods import (
    FitConfig,
    ScheduledMagnitude,
    SoftMagnitude,
    compress,
    distill_loss,
    evaluate,
    fit,
    get_masks,
    gradual,
    hybrid_prune,
    iterative_prune,
    magnitude_prune,
    quantize_int8,
    sparsity_of,
)


@pytest.fixture(scope="module")
def digits():
    xtr, ytr, xte, yte = load_digits_tensors(seed=0)
    return (xtr, ytr), (xte, yte)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(32, 10))


class Interrupt(Exception):
    pass


def _stop_at(step):
    def hook(s, _m):
        if s == step:
            raise Interrupt
    return hook


@pytest.mark.parametrize("masked", [False, True])
def test_interrupted_run_resumes_bit_identical(tmp_path, digits, masked):
    train, _ = digits
    cfg = FitConfig(epochs=2, batch_size=128, lr=1e-2, checkpoint=tmp_path / "ck.pt",
                    checkpoint_every=3, progress=False)
    sched = (lambda: ScheduledMagnitude(gradual(0.7, 0, 12, every=2))) if masked else None

    ref = _net()
    torch.manual_seed(1)
    ref_res = fit(ref, train, FitConfig(**{**cfg.__dict__, "checkpoint": None}),
                  on_step=sched() if masked else None)

    model = _net()
    torch.manual_seed(1)
    hook = sched() if masked else None

    def interrupting(step, m):
        if hook is not None:
            hook(step, m)
        _stop_at(16)(step, m)

    with pytest.raises(Interrupt):
        fit(model, train, cfg, on_step=interrupting)
    fresh = _net(seed=5)  # a new process: different init, state comes from the checkpoint
    res = fit(fresh, train, cfg, on_step=sched() if masked else None)
    assert res.resumed_from == 15 and res.steps == ref_res.steps == 22
    assert res.epoch_losses == pytest.approx(ref_res.epoch_losses, rel=1e-6)
    for (n, p), (_, q) in zip(ref.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(p, q), n
    if masked:
        assert sparsity_of(fresh) == pytest.approx(0.7, abs=1e-3)


def test_fit_learns_and_validates(digits):
    train, test = digits
    model = _net()
    fit(model, train, FitConfig(epochs=3, lr=1e-2, progress=False))
    assert evaluate(model, test) > 0.85
    with pytest.raises(ValueError, match="targets"):
        fit(model, (train[0], train[1][:5]), FitConfig(progress=False))
    with pytest.raises(ValueError, match="optimizer"):
        FitConfig(optimizer="lbfgs2")


def test_distill_loss_formula():
    torch.manual_seed(0)
    s, t, y = torch.randn(5, 4), torch.randn(5, 4), torch.randint(0, 4, (5,))
    T, a = 3.0, 0.7
    p_t = torch.softmax(t / T, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(s / T, 1))).sum(1).mean()
    expected = a * T * T * kl + (1 - a) * F.cross_entropy(s, y)
    torch.testing.assert_close(distill_loss(s, t, y, T, a), expected)
    torch.testing.assert_close(distill_loss(s, t, y, T, 0.0), F.cross_entropy(s, y))


def test_quantize_int8_close_and_replaces_linear(digits):
    _, test = digits
    model = _net().eval()
    q = quantize_int8(model)
    assert type(q[1]) is not nn.Linear and type(model[1]) is nn.Linear  # original untouched
    torch.testing.assert_close(q(test[0][:16]), model(test[0][:16]), atol=0.05, rtol=0.05)


def test_compress_pipeline_prune_distill_quantize(digits):
    train, test = digits
    model = _net()
    fit(model, train, FitConfig(epochs=3, lr=1e-2, progress=False))
    res = compress(model, train, lambda m: magnitude_prune(m, 0.8),
                   FitConfig(epochs=2, lr=5e-3, distill_alpha=0.5, progress=False), test=test)
    assert get_masks(res.model) == {}  # baked
    assert sparsity_of(res.model) == pytest.approx(0.8, abs=1e-3)
    assert res.accuracy > res.dense_accuracy - 0.1
    assert abs(res.quantized_accuracy - res.accuracy) < 0.05


def test_hybrid_structured_then_unstructured():
    model = mlp()
    gs = mlp_groups(model)

    def structured(m):
        new = slice_out(m, gs, {"1.out": list(range(16))})
        m[1] = nn.Linear(64, 16)
        m[3] = nn.Linear(16, 16)
        with torch.no_grad():
            m[1].weight.copy_(new["1.weight"])
            m[1].bias.copy_(new["1.bias"])
            m[3].weight.copy_(new["3.weight"])
        return "cut"

    assert hybrid_prune(model, structured, 0.5) == "cut"
    masks = get_masks(model)
    assert masks["1.weight"].shape == (16, 64)
    assert sparsity_of(model) == pytest.approx(0.5, abs=1e-3)


def test_iterative_prune_rounds(digits):
    train, test = digits
    model = _net()
    hist = iterative_prune(model, train, 0.9, 2, FitConfig(epochs=1, lr=1e-2, progress=False),
                           test=test)
    assert [round(h.sparsity, 3) for h in hist] == [round(1 - 0.1**0.5, 3), 0.9]
    assert hist[-1].accuracy > 0.5


def test_soft_pruning_lets_weights_recover(digits):
    train, _ = digits
    model = _net()
    soft = SoftMagnitude(lambda step: 0.6, every=2)
    fit(model, train, FitConfig(epochs=2, lr=1e-2, progress=False), on_step=soft)
    assert soft.recovered > 0  # some zeroed weights grew back and were kept
    assert get_masks(model) == {}  # soft: no mask until the final cut
    soft.finish(model, 0.6)
    assert sparsity_of(model) == pytest.approx(0.6, abs=1e-3)
    snapshot = copy.deepcopy(model.state_dict())
    fit(model, train, FitConfig(epochs=1, lr=1e-2, progress=False))
    assert sparsity_of(model) >= 0.6 - 1e-3 and snapshot.keys() == model.state_dict().keys()
