"""Calibration-aware criteria (obs, act_norm, fluctuation) against least-squares references."""

from __future__ import annotations

import pytest
import torch
from importance_models import ConvNet, Group, HeadNet, Member, conv1_group, conv2_group, one_each
from torch import nn

from prunekit.importance import ImportanceContext, available, get, score_groups
from prunekit.importance.gram import Gram, inverse, ridge_solve, squared_error
from prunekit.importance.linear_forms import form_of
from prunekit.importance.obs import consumers


class MLP(nn.Module):
    """fc1 (6 → 5) → tanh → fc2 (5 → 4); fc1's outputs are the channels."""

    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 5)
        self.fc2 = nn.Linear(5, 4, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


def hidden_group(n: int = 5) -> Group:
    idx = one_each(n)
    return Group("fc1", n, [Member("fc1.weight", 0, idx), Member("fc1.bias", 0, idx),
                            Member("fc2.weight", 1, idx)], [("fc1", 1)])


def _ctx(x: torch.Tensor, n: int = 4) -> ImportanceContext:
    return ImportanceContext(batches=list(x.chunk(n)), n_batches=n)


def _hidden(model: MLP, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.tanh(model.fc1(x)).double()


def _refit_error(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                 keep: list[int]) -> float:
    """min over W', b' of ‖[h_keep, 1] [W', b']ᵀ − (h Wᵀ + b)‖², by torch.linalg.lstsq."""
    y = h @ w.t() + (b if b is not None else 0)
    a = h[:, keep]
    if b is not None:
        a = torch.cat([a, torch.ones(len(h), 1, dtype=h.dtype)], 1)
    sol = torch.linalg.lstsq(a, y).solution
    return float(((a @ sol - y) ** 2).sum())


@pytest.fixture
def mlp_data():
    torch.manual_seed(0)
    model = MLP()
    x = torch.randn(64, 6)
    return model, x


def test_registered_with_options():
    assert {"obs", "act_norm", "fluctuation"} <= set(available())
    get("obs", damping=0.1, greedy=False)
    with pytest.raises(ValueError, match="no option"):
        get("obs", dampng=0.1)


@pytest.mark.parametrize("bias", [True, False])
def test_one_shot_obs_is_the_least_squares_error_of_removing_one_channel(mlp_data, bias):
    """score_c · energy == min ‖W' h_{−c} − W h‖² (damping → 0), checked with lstsq."""
    model, x = mlp_data
    model = MLP(bias=bias)
    h = _hidden(model, x)
    w = model.fc2.weight.detach().double()
    b = model.fc2.bias.detach().double() if bias else None
    y = h @ w.t() + (b if b is not None else 0)
    energy = float((y ** 2).sum())
    scores = get("obs", damping=1e-12, greedy=False)(model, hidden_group(), _ctx(x))
    for c in range(5):
        keep = [j for j in range(5) if j != c]
        assert scores[c] * energy == pytest.approx(_refit_error(h, w, b, keep), rel=1e-5,
                                                   abs=1e-9)


def test_greedy_obs_scores_are_cumulative_refit_errors(mlp_data):
    """Greedy order: the error after removing the k lowest-scored channels (and refitting
    the rest) equals the k-th score; the first one removed is the one-shot minimum."""
    model, x = mlp_data
    h = _hidden(model, x)
    w, b = model.fc2.weight.detach().double(), model.fc2.bias.detach().double()
    energy = float(((h @ w.t() + b) ** 2).sum())
    ctx = _ctx(x)
    greedy = get("obs", damping=1e-12)(model, hidden_group(), ctx)
    single = get("obs", damping=1e-12, greedy=False)(model, hidden_group(), ctx)
    order = torch.argsort(greedy).tolist()
    assert order[0] == int(torch.argmin(single))
    for k in range(1, 5):
        keep = sorted(order[k:])
        assert greedy[order[k - 1]] * energy == pytest.approx(_refit_error(h, w, b, keep),
                                                              rel=1e-5, abs=1e-9)


def test_duplicated_channel_costs_nothing(mlp_data):
    """Two identical hidden units: removing one is free after compensation (OBS ≈ 0),
    while the activation-weighted norm still charges it."""
    model, x = mlp_data
    with torch.no_grad():
        model.fc1.weight[3] = model.fc1.weight[1]
        model.fc1.bias[3] = model.fc1.bias[1]
    ctx = _ctx(x)
    obs = get("obs", damping=1e-10, greedy=False)(model, hidden_group(), ctx)
    act = get("act_norm")(model, hidden_group(), ctx)
    assert obs[1] < 1e-8 and obs[3] < 1e-8
    assert act[3] > 1e-3


def test_act_norm_and_fluctuation_formulas(mlp_data):
    model, x = mlp_data
    h = _hidden(model, x)
    col = (model.fc2.weight.detach().double() ** 2).sum(0)
    ctx = _ctx(x)
    act = get("act_norm")(model, hidden_group(), ctx)
    fluct = get("fluctuation")(model, hidden_group(), ctx)
    expect_act = col * (h ** 2).mean(0)
    expect_fluct = col * h.var(0, unbiased=False)
    torch.testing.assert_close(act, expect_act / expect_act.sum())
    torch.testing.assert_close(fluct, expect_fluct / expect_fluct.sum())


def test_constant_channel_has_no_fluctuation(mlp_data):
    model, x = mlp_data
    with torch.no_grad():
        model.fc1.weight[2] = 0.0
        model.fc1.bias[2] = 2.0   # a constant input of fc2: the bias can absorb it
    ctx = _ctx(x)
    assert float(get("fluctuation")(model, hidden_group(), ctx)[2]) == pytest.approx(0, abs=1e-12)
    assert float(get("act_norm")(model, hidden_group(), ctx)[2]) > 0.05
    assert float(get("obs", damping=1e-10)(model, hidden_group(), ctx)[2]) < 1e-8


def test_conv_consumers_use_unfolded_and_flattened_columns():
    """ConvNet: conv1's channels own conv2's 9 kernel columns each; conv2's channels own
    16 flattened fc inputs each. One-shot OBS equals the lstsq refit error per channel."""
    torch.manual_seed(0)
    model = ConvNet().eval()
    x = torch.randn(16, 3, 4, 4)
    c1, c2 = consumers(model, conv1_group()), consumers(model, conv2_group())
    assert [c.name for c in c1] == ["conv2"] and [c.name for c in c2] == ["fc"]
    assert c1[0].columns[2] == list(range(18, 27))
    assert c2[0].columns[1] == list(range(16, 32))
    rows = []
    model.conv2.register_forward_pre_hook(lambda m, a: rows.append(form_of(m).rows(a[0])))
    with torch.no_grad():
        model(x)
    h = rows[0].double()
    w = form_of(model.conv2).weight().double()
    energy = float(((h @ w.t()) ** 2).sum())
    scores = get("obs", damping=1e-12, greedy=False)(model, conv1_group(), _ctx(x))
    for c in (0, 4):
        keep = [j for j in range(54) if j // 9 != c]
        assert scores[c] * energy == pytest.approx(_refit_error(h, w, None, keep), rel=1e-4)


def test_heads_are_scored_at_the_output_projection():
    """A head whose output-projection columns are zero costs nothing."""
    torch.manual_seed(0)
    model = HeadNet()
    with torch.no_grad():
        model.out.weight[:, 4:8] = 0.0
    heads = [list(range(h * 4, h * 4 + 4)) for h in range(3)]
    group = Group("heads", 3, [Member("proj.weight", 0, heads), Member("out.weight", 1, heads)],
                  [("proj", 1)])
    ctx = _ctx(torch.randn(32, 8))
    for name in ("obs", "act_norm", "fluctuation"):
        scores = score_groups(model, [group], name, ctx)["heads"]
        assert int(torch.argmin(scores)) == 1
        assert float(scores[1]) == pytest.approx(0.0, abs=1e-12)


def test_group_without_consumer_falls_back_and_says_so(mlp_data):
    model, x = mlp_data
    group = Group("fc1", 5, [Member("fc1.weight", 0, one_each(5))], [("fc1", 1)])
    ctx = _ctx(x)
    scores = get("obs")(model, group, ctx)
    torch.testing.assert_close(scores, get("l2")(model, group, ctx))
    assert any("no consuming layer" in n for n in ctx.notes)
    with pytest.raises(ValueError, match="no consuming layer"):
        get("obs", fallback=None)(model, group, ctx)


def test_scoring_leaves_the_model_as_it_was(mlp_data):
    model, x = mlp_data
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    get("obs")(model, hidden_group(), _ctx(x))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_damping_is_rejected(mlp_data):
    model, x = mlp_data
    with pytest.raises(ValueError, match="damping"):
        get("obs", damping=-1.0)(model, hidden_group(), _ctx(x))


def test_streamed_gram_equals_one_shot_and_error_identity():
    """Adding rows in batches gives the same sums as all at once; the error from the sums
    equals the direct residual; the damping-free solve equals lstsq."""
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(50, 7, generator=gen), torch.randn(50, 3, generator=gen)
    whole = Gram.empty(7, 3, intercept=True)
    whole.add(x, y)
    parts = Gram.empty(7, 3, intercept=True)
    for xs, ys in zip(x.split(13), y.split(13), strict=True):
        parts.add(xs, ys)
    torch.testing.assert_close(parts.xx, whole.xx)
    torch.testing.assert_close(parts.yx, whole.yx)
    assert parts.n == whole.n == 50
    a = torch.cat([x, torch.ones(50, 1)], 1).double()
    ref = torch.linalg.lstsq(a, y.double()).solution.t()
    torch.testing.assert_close(ridge_solve(whole, 0.0), ref)
    w = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(squared_error(whole, w), ((a @ w.t() - y.double()) ** 2).sum(0))
    torch.testing.assert_close(inverse(whole, 0.0) @ whole.xx, torch.eye(8, dtype=torch.float64))


def test_greedy_beyond_its_cost_bound_scores_one_shot_and_says_so(mlp_data):
    """Greedy OBS costs ~channels · k² per consumer: past ``max_greedy_flops`` a group is
    scored one channel at a time (as ``greedy=False``) and named in the notes, so that a
    wide real layer (ResNet-18: 512 channels, k = 4608) never runs for minutes."""
    model, x = mlp_data
    ctx = _ctx(x)
    capped = get("obs", max_greedy_flops=10.0)(model, hidden_group(), ctx)
    single = get("obs", greedy=False)(model, hidden_group(), _ctx(x))
    torch.testing.assert_close(capped, single)
    assert any("not greedily" in n and "'fc1'" in n for n in ctx.notes)
    quiet = _ctx(x)
    get("obs")(model, hidden_group(), quiet)  # 5 · 6² flops: greedy, no note
    assert not any("not greedily" in n for n in quiet.notes)
