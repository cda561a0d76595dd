"""Reconstruction after a cut: least squares, bias compensation, blocks, and the API."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import prunekit
from prunekit.graph import build_groups
from prunekit.importance import ImportanceContext
from prunekit.importance.linear_forms import form_of
from prunekit.reconstruct import ReconstructConfig, reconstruct
from prunekit.surgery import remove_channels


def _ctx(x: torch.Tensor, n: int = 4) -> ImportanceContext:
    return ImportanceContext(batches=list(x.chunk(n)), n_batches=n)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 7), nn.Tanh(), nn.Linear(7, 3))


def _cut(model: nn.Module, x: torch.Tensor, removal: dict) -> tuple[nn.Module, object]:
    """A pruned copy of ``model`` and the plan (groups by id, channels to remove)."""
    pruned = copy.deepcopy(model)
    gs = build_groups(pruned, x[:2])
    return pruned, remove_channels(pruned, gs, removal, x[:2])


def _layer_io(model: nn.Module, name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    seen = {}
    module = model.get_submodule(name)
    h = module.register_forward_hook(lambda m, a, o: seen.update(x=a[0], y=o))
    with torch.no_grad():
        model(x)
    h.remove()
    return seen["x"], seen["y"]


# ------------------------------------------------------------------ least squares
def test_least_squares_matches_lstsq_reference():
    """damping 0: the consumer's new [W, b] is lstsq([x_kept, 1], y_dense)."""
    dense = _mlp()
    x = torch.randn(96, 6)
    pruned, plan = _cut(dense, x, {"0": [1, 5]})
    dense_ref = copy.deepcopy(dense)
    reports = reconstruct(dense, pruned, plan, _ctx(x), ReconstructConfig(damping=0.0))
    assert [r.layer for r in reports] == ["2"]
    xp, _ = _layer_io(pruned, "2", x)
    _, yd = _layer_io(dense_ref, "2", x)
    a = torch.cat([xp, torch.ones(len(x), 1)], 1).double()
    sol = torch.linalg.lstsq(a, yd.double()).solution.t()
    torch.testing.assert_close(pruned[2].weight.detach().double(), sol[:, :-1], atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(pruned[2].bias.detach().double(), sol[:, -1], atol=1e-5,
                               rtol=1e-5)
    assert reports[0].err_after < reports[0].err_before
    for p, q in zip(dense.parameters(), dense_ref.parameters(), strict=True):
        assert torch.equal(p, q)   # the dense reference is never touched


def test_duplicated_channel_is_recovered_exactly():
    """Hidden unit 5 copies unit 2: remove 5, reconstruct -> the outputs equal the dense."""
    dense = _mlp(1)
    with torch.no_grad():
        dense[0].weight[5] = dense[0].weight[2]
        dense[0].bias[5] = dense[0].bias[2]
    x = torch.randn(64, 6)
    pruned, plan = _cut(dense, x, {"0": [5]})
    with torch.no_grad():
        assert not torch.allclose(pruned(x), dense(x), atol=1e-3)
    reconstruct(dense, pruned, plan, _ctx(x), ReconstructConfig(damping=0.0))
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), dense(x), atol=1e-5, rtol=1e-5)


def test_duplicated_conv_channel_is_recovered_exactly():
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(6, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 9, 5))
    with torch.no_grad():
        dense[0].weight[4] = dense[0].weight[1]
        dense[0].bias[4] = dense[0].bias[1]
    x = torch.randn(32, 3, 6, 6)
    pruned, plan = _cut(dense, x, {"0": [4]})
    reports = reconstruct(dense, pruned, plan, _ctx(x), ReconstructConfig(damping=0.0))
    assert [r.layer for r in reports] == ["2"]
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), dense(x), atol=1e-4, rtol=1e-4)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), damping=st.sampled_from([0.0, 1e-3, 0.1, 10.0]),
       mode=st.sampled_from(["ls", "bias"]), layers=st.sampled_from(["consumers", "all"]))
def test_reconstruction_never_increases_a_layers_calibration_error(seed, damping, mode,
                                                                   layers):
    """Property: every re-fitted layer's relative error (checked directly) goes down or
    stays, whatever the cut, damping and mode."""
    dense = _mlp(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 6, generator=gen)
    drop0 = torch.randperm(8, generator=gen)[: 1 + seed % 6].tolist()
    drop2 = torch.randperm(7, generator=gen)[: seed % 5].tolist()
    pruned, plan = _cut(dense, x, {"0": drop0, "2": drop2})
    cfg = ReconstructConfig(mode=mode, damping=damping, layers=layers)
    before = copy.deepcopy(pruned)
    for r in reconstruct(dense, pruned, plan, _ctx(x), cfg):
        assert r.err_after <= r.err_before + 1e-12
        direct = _relative_error(dense, pruned, r.layer, x, plan)
        assert direct == pytest.approx(r.err_after, rel=1e-5, abs=1e-9)  # float32 weights
    assert _output_error(dense, pruned, x) <= _output_error(dense, before, x) * 1.5 + 1e-6


def _relative_error(dense, pruned, name, x, plan) -> float:
    from prunekit.reconstruct import kept

    xp, yp = _layer_io(pruned, name, x)
    _, yd = _layer_io(dense, name, x)
    keep = kept(plan.cuts, f"{name}.weight", 0)
    yd = yd if keep is None else yd[:, keep]
    return float(((yp - yd) ** 2).sum() / (yd ** 2).sum())


def _output_error(dense, pruned, x) -> float:
    with torch.no_grad():
        return float(((pruned(x) - dense(x)) ** 2).sum() / (dense(x) ** 2).sum())


def test_bias_compensation_is_the_mean_residual():
    dense = _mlp(2)
    x = torch.randn(80, 6)
    pruned, plan = _cut(dense, x, {"0": [0, 3, 4]})
    w_before = pruned[2].weight.detach().clone()
    xp, yp = _layer_io(pruned, "2", x)
    _, yd = _layer_io(dense, "2", x)
    expect = pruned[2].bias.detach() - (yp - yd).mean(0)
    [r] = reconstruct(dense, pruned, plan, _ctx(x), ReconstructConfig(mode="bias"))
    assert torch.equal(pruned[2].weight, w_before)
    torch.testing.assert_close(pruned[2].bias.detach(), expect, atol=1e-5, rtol=1e-5)
    assert r.method == "bias" and r.err_after < r.err_before


def test_bias_mode_names_a_layer_without_bias():
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2, bias=False))
    x = torch.randn(20, 5)
    pruned, plan = _cut(dense, x, {"0": [1]})
    [r] = reconstruct(dense, pruned, plan, _ctx(x), ReconstructConfig(mode="bias"))
    assert "no bias" in r.note


# ------------------------------------------------------------------ convolutions
@pytest.mark.parametrize("conv", [
    nn.Conv2d(4, 6, 3, padding=1, groups=2),
    nn.Conv2d(4, 4, 3, stride=2, padding="valid", groups=4),
    nn.Conv2d(4, 6, (3, 2), dilation=(2, 1), padding=(1, 0)),
    nn.Conv2d(4, 6, 3, padding="same", padding_mode="reflect", bias=False),
    nn.Conv1d(4, 6, 3, padding=2, groups=2),
])
def test_conv_rows_times_weight_is_the_conv(conv):
    """The matrix view of a conv (unfolded rows, per-group weight) reproduces its output."""
    torch.manual_seed(0)
    form = form_of(conv)
    x = torch.randn(2, 4, 7) if isinstance(conv, nn.Conv1d) else torch.randn(2, 4, 7, 6)
    with torch.no_grad():
        y = form.outputs(conv(x))
        rows, w = form.rows(x), form.weight()
    g, k, o = form.groups, rows.shape[1] // form.groups, w.shape[0] // form.groups
    parts = [rows[:, j * k:(j + 1) * k] @ w[j * o:(j + 1) * o].t() for j in range(g)]
    out = torch.cat(parts, 1) + (conv.bias if conv.bias is not None else 0)
    torch.testing.assert_close(out, y, atol=1e-5, rtol=1e-5)


def _separable(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8),   # depthwise
                         nn.ReLU(), nn.Conv2d(8, 6, 1),             # pointwise consumer
                         nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1, groups=2), nn.Flatten(),
                         nn.Linear(6 * 25, 4)).eval()


def test_depthwise_channels_are_reconstructed_at_the_pointwise_conv():
    dense = _separable()
    x = torch.randn(24, 3, 5, 5)
    gs = build_groups(dense, x[:2])
    gid = next(g.id for g in gs.groups if any(m.param == "3.weight" for m in g.members))
    pruned, plan = _cut(dense, x, {gid: [0, 3, 6]})
    reports = reconstruct(dense, pruned, plan, _ctx(x), ReconstructConfig(damping=0.0))
    assert [r.layer for r in reports] == ["5"]    # the depthwise conv is not a consumer
    xp, _ = _layer_io(pruned, "5", x)
    _, yd = _layer_io(dense, "5", x)
    rows = xp.permute(0, 2, 3, 1).reshape(-1, 5).double()
    a = torch.cat([rows, torch.ones(len(rows), 1, dtype=rows.dtype)], 1)
    target = yd.permute(0, 2, 3, 1).reshape(-1, 6).double()
    sol = torch.linalg.lstsq(a, target).solution.t()
    torch.testing.assert_close(pruned[5].weight.detach().double().flatten(1), sol[:, :-1],
                               atol=1e-4, rtol=1e-4)
    assert reports[0].err_after < reports[0].err_before


def test_all_layers_refits_depthwise_and_grouped_convs_per_group():
    """layers="all": the depthwise conv and the grouped conv are re-fitted too, each conv
    group on its own (the solve equals lstsq per group)."""
    dense = _separable(3)
    x = torch.randn(24, 3, 5, 5)
    gs = build_groups(dense, x[:2])
    gid = next(g.id for g in gs.groups if any(m.param == "3.weight" for m in g.members))
    pruned, plan = _cut(dense, x, {gid: [1, 2]})
    reports = reconstruct(dense, pruned, plan, _ctx(x),
                          ReconstructConfig(damping=0.0, layers="all"))
    assert [r.layer for r in reports] == ["5", "7", "9"]
    assert all(r.err_after <= r.err_before for r in reports)
    xp, _ = _layer_io(pruned, "7", x)
    _, yd = _layer_io(dense, "7", x)
    form = form_of(pruned[7])
    rows, y = form.rows(xp).double(), form.outputs(yd).double()
    k = rows.shape[1] // 2
    for j in range(2):
        a = torch.cat([rows[:, j * k:(j + 1) * k], torch.ones(len(rows), 1).double()], 1)
        sol = torch.linalg.lstsq(a, y[:, j * 3:(j + 1) * 3]).solution.t()
        torch.testing.assert_close(form.weight()[j * 3:(j + 1) * 3].double(), sol[:, :-1],
                                   atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ transformer, blocks
def _tiny_bert():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=32,
                                  max_position_embeddings=16)
    torch.manual_seed(0)
    return transformers.BertModel(cfg).eval()


def test_tiny_transformer_heads_and_ffn_are_reconstructed():
    """Heads (read at the attention output projection) and FFN units (at the down
    projection) of a tiny BERT: every consumer is re-fitted and the last hidden state
    moves much closer to the dense one."""
    dense = _tiny_bert()
    ids = torch.randint(0, 50, (48, 8), generator=torch.Generator().manual_seed(0))
    ctx = ImportanceContext(batches=[{"input_ids": b} for b in ids.chunk(4)], n_batches=4)
    model = copy.deepcopy(dense)
    with pytest.warns(prunekit.surgery.ConfigWarning):  # BERT's config cannot say cut heads
        res = prunekit.prune(model, {"input_ids": ids[:2]}, ratio=0.5, ignore=["embeddings"],
                             configs="warn")
    with torch.no_grad():
        ref = dense(input_ids=ids).last_hidden_state
        err_plain = float(((model(input_ids=ids).last_hidden_state - ref) ** 2).mean())
    reports = reconstruct(dense, model, res.plan, ctx)
    assert [r.layer for r in reports] == [f"encoder.layer.{i}.{part}.dense" for i in (0, 1)
                                          for part in ("attention.output", "output")]
    assert all(r.err_after < 0.5 * r.err_before for r in reports)
    with torch.no_grad():
        err = float(((model(input_ids=ids).last_hidden_state - ref) ** 2).mean())
    assert err < 0.5 * err_plain


def test_block_mode_reports_segments_and_never_increases_their_error():
    dense = _mlp(4)
    x = torch.randn(64, 6)
    pruned, plan = _cut(dense, x, {"0": [0, 1, 2], "2": [3, 4]})
    cfg = ReconstructConfig(mode="block", steps=30, lr=1e-2)
    reports = reconstruct(dense, pruned, plan, _ctx(x), cfg)
    assert [r.layer for r in reports] == ["2", "2 -> 4", "4", "4 -> output"]
    assert [r.method for r in reports] == ["ls", "block", "ls", "block"]
    assert all(r.err_after <= r.err_before for r in reports)
    assert reports[-1].err_after == pytest.approx(_output_error(dense, pruned, x), rel=1e-4)
    assert all(p.requires_grad for p in pruned.parameters())
    assert all(p.grad is None for p in pruned.parameters())


# ------------------------------------------------------------------ API
def test_prune_reconstruct_lowers_the_output_error_and_reports_layers():
    dense = _mlp(5)
    x = torch.randn(128, 6)
    ctx = _ctx(x)
    plain, model = copy.deepcopy(dense), copy.deepcopy(dense)
    prunekit.prune(plain, x[:2], ratio=0.5, calibration=ctx)
    res = prunekit.prune(model, x[:2], ratio=0.5, calibration=ctx, reconstruct=True,
                         progress=False)
    assert [r["layer"] for r in res.reconstruction] == ["2", "4"]
    assert set(res.reconstruction[0]) == {"layer", "method", "err_before", "err_after", "rows",
                                          "note"}
    assert _output_error(dense, model, x) < _output_error(dense, plain, x)
    assert res.plan.n_removed == 7


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"reconstruct": True}, ValueError, "calibration"),
    ({"reconstruct": "lsq", "calibration": "ctx"}, ValueError, "one of"),
    ({"reconstruct": 1.0, "calibration": "ctx"}, TypeError, "reconstruct"),
    ({"reconstruct": True, "calibration": ImportanceContext(example_inputs=torch.ones(1, 6))},
     ValueError, "batches"),
    ({"reconstruct": True, "calibration": "ctx", "target_speedup": 1.5, "ratio": None},
     ValueError, "does not apply to target_speedup"),
])
def test_bad_reconstruct_arguments_leave_the_model_untouched(kwargs, exc, match):
    model = _mlp()
    x = torch.randn(16, 6)
    if kwargs.get("calibration") == "ctx":
        kwargs["calibration"] = _ctx(x)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(exc, match=match):
        prunekit.prune(model, x[:2], **{"ratio": 0.5, **kwargs})
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("field, value", [("mode", "x"), ("layers", "some"), ("damping", -1),
                                          ("steps", 1.5), ("lr", 0)])
def test_config_validates(field, value):
    with pytest.raises(ValueError, match=field):
        ReconstructConfig(**{field: value})


def test_a_failed_reconstruction_puts_the_model_back():
    """Calibration batches the model cannot run: the cut is undone, bit for bit."""
    model = _mlp()
    x = torch.randn(16, 6)
    bad = ImportanceContext(batches=[torch.randn(4, 9)], n_batches=1)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(RuntimeError):
        prunekit.prune(model, x[:2], ratio=0.5, calibration=bad, reconstruct="ls")
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model[0].out_features == 8


# ------------------------------------------------------------------ recipes
@pytest.mark.parametrize("data, message", [
    ({"reconstruct": {"mode": "lsq"}}, "recipe field 'reconstruct.mode'"),
    ({"reconstruct": {"samples": 0}}, "recipe field 'reconstruct.samples'"),
    ({"reconstruct": {"dampng": 0.1}}, "did you mean 'reconstruct.damping'?"),
    ({"method": "proximal_group_lasso", "reconstruct": {}}, "reconstruct: applies to method"),
    ({"target": {"speedup": 2}, "reconstruct": {}}, "reconstruct: applies to method"),
])
def test_recipe_reconstruct_field_is_validated(data, message):
    from prunekit.recipes.schema import RecipeError, parse_recipe

    with pytest.raises(RecipeError, match="reconstruct") as err:
        parse_recipe(data)
    assert message in str(err.value)


def test_recipe_reconstruct_reaches_prune():
    """A recipe with ``reconstruct`` prunes with calibration batches from the training
    split and reports the re-fitted layers; without a training split it says so."""
    from prunekit.recipes.runner import Job, _one_shot
    from prunekit.recipes.schema import RecipeError, parse_recipe
    from prunekit.recipes.specs import Dataset, ModelSpec

    model = _separable()
    x = torch.rand(40, 3, 5, 5)
    recipe = parse_recipe({"target": {"ratio": 0.25},
                           "reconstruct": {"samples": 32, "batch_size": 8}})
    data = Dataset("digits", (3, 5, 5), (x, torch.zeros(40, dtype=torch.long)), None)
    lines: list[str] = []
    job = Job(ModelSpec("m.py:f", model, default_shape=(3, 5, 5)), data, recipe)
    _one_shot(model, x[:1], job, lines.append)
    assert any("reconstruct (ls) on 32 training inputs" in line for line in lines)
    job.data = Dataset("random:3x5x5", (3, 5, 5))
    with pytest.raises(RecipeError, match="no training split"):
        _one_shot(_separable(), x[:1], job, lines.append)
