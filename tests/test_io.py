"""prunekit.save / prunekit.load without pickle, from folders that may come from anywhere;
ONNX export of a pruned model. (Random tampering: tests/test_io_fuzz.py.)"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from io_support import X as XT
from io_support import edit_json, pruned_cnn, refresh_digests, tiny_cnn, tiny_mlp
from safetensors.torch import load_file, save_file
from support import assert_same_state, state_of
from torch import nn

import prunekit
import prunekit.io
import prunekit.surgery
from prunekit.graph.zoo import hf_models
from prunekit.surgery import Plan, PlanError, apply_plan
from prunekit.surgery.allowed import ALLOWED, allowed_attrs, entry
from prunekit.surgery.handlers import BY_NAME, BY_TYPE

FIXTURES = Path(__file__).parent / "fixtures" / "io_2ce6104"

torch.set_num_threads(1)  # see tests/graph/conftest.py


def _resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=7).eval()


X = torch.randn(1, 3, 32, 32)


@pytest.fixture(scope="module")
def pruned():
    m = _resnet()
    res = prunekit.prune(m, X, ratio=0.4, global_ranking=True)  # non-uniform widths
    widths = {c.out_channels for c in m.modules() if isinstance(c, torch.nn.Conv2d)}
    assert len(widths) > 4
    return m, res


def test_round_trip_with_non_uniform_widths(tmp_path, pruned, monkeypatch):
    m, res = pruned
    path = prunekit.save(m, tmp_path / "ckpt", plan=res.plan)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "prunekit" and manifest["channels_removed"] > 0

    def no_pickle(*a, **k):
        raise AssertionError("load must not unpickle")

    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = prunekit.load(path, _resnet).eval()
    assert {k: v.shape for k, v in loaded.state_dict().items()} == \
        {k: v.shape for k, v in m.state_dict().items()}
    torch.testing.assert_close(loaded(X), m(X), rtol=0, atol=0)


def test_load_refuses_files_that_are_not_ours(tmp_path, pruned):
    with pytest.raises(ValueError, match="not a prunekit"):
        prunekit.load(tmp_path, _resnet)
    (tmp_path / "manifest.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a prunekit"):
        prunekit.load(tmp_path, _resnet)
    file = tmp_path / "model.pt"
    torch.save(_resnet().state_dict(), file)
    with pytest.raises(PlanError, match="not a prunekit model directory"):
        prunekit.load(file, _resnet)


def test_plan_that_does_not_fit_the_factory_is_rejected(tmp_path, pruned):
    m, res = pruned
    prunekit.save(m, tmp_path, plan=res.plan)
    with pytest.raises(PlanError, match="model.safetensors: weights do not match the model"):
        prunekit.load(tmp_path, lambda: torchvision.models.resnet34(num_classes=7))
    with pytest.raises(PlanError, match=r"plan.json: cuts\[0\].param: the model has no "):
        prunekit.load(tmp_path, lambda: nn.Sequential(nn.Conv2d(3, 4, 1)))
    with pytest.raises(TypeError):
        prunekit.load(tmp_path, lambda: "not a model")


def test_round_trip_tied_weights_hf_gpt2(tmp_path):
    zm = {z.name: z for z in hf_models()}["hf/gpt2"]
    torch.manual_seed(0)
    m = zm.build().eval()
    x = zm.inputs()
    res = prunekit.prune(m, x, ratio=0.5)
    prunekit.save(m, tmp_path, plan=res.plan, example_inputs=x)  # keyword inputs
    assert prunekit.io.read_manifest(tmp_path)["example_inputs"]["kind"] == "kwargs"
    loaded = prunekit.load(tmp_path, zm.build).eval()
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    torch.testing.assert_close(loaded(**x).logits, m(**x).logits)


def test_onnx_export_of_pruned_model_matches_onnxruntime(tmp_path, pruned):
    ort = pytest.importorskip("onnxruntime")
    m, _ = pruned
    file = tmp_path / "pruned.onnx"
    torch.onnx.export(m, (X,), str(file), dynamo=False, input_names=["x"])
    session = ort.InferenceSession(str(file))
    got = session.run(None, {"x": X.numpy()})[0]
    np.testing.assert_allclose(got, m(X).detach().numpy(), atol=1e-4, rtol=0)


# ------------------------------------------------------------------ old folders, new checks
@pytest.mark.parametrize("name, factory", [("channels", tiny_cnn), ("steps", tiny_cnn),
                                           ("features", tiny_mlp)])
def test_folders_written_before_the_checks_still_load(name, factory):
    """Written by prunekit 2ce6104 (no digests, no example inputs): same outputs."""
    manifest = prunekit.io.read_manifest(FIXTURES / name)
    assert "sha256" not in manifest and "example_inputs" not in manifest
    loaded = prunekit.load(FIXTURES / name, factory)
    expected = load_file(FIXTURES / "expected.safetensors")[name]
    torch.testing.assert_close(loaded(XT), expected, rtol=0, atol=0)


@pytest.fixture(scope="module")
def saved_cnn(tmp_path_factory):
    """A depth + channels folder with example inputs, and the model it holds."""
    model, plans = pruned_cnn()
    path = prunekit.save(model, tmp_path_factory.mktemp("base") / "ckpt", plan=plans,
                         example_inputs=XT)
    return path, model


@pytest.fixture
def folder(tmp_path, saved_cnn):
    """A fresh copy of the saved folder, inside ``tmp_path/inside``."""
    return Path(shutil.copytree(saved_cnn[0], tmp_path / "inside"))


def test_round_trip_with_example_inputs_checks_the_outputs(folder, saved_cnn):
    manifest = prunekit.io.read_manifest(folder)
    assert manifest["structures"] == ["depth", "channels"]
    assert set(manifest["sha256"]) == {"model.safetensors", "plan.json", "steps.json",
                                       "inputs.safetensors"}
    assert manifest["example_inputs"] == {"file": "inputs.safetensors", "kind": "tensor",
                                          "names": ["0"], "outputs": 1}
    loaded = prunekit.load(folder, tiny_cnn)
    torch.testing.assert_close(loaded(XT), saved_cnn[1](XT), rtol=0, atol=0)


def test_tuple_inputs_round_trip(tmp_path):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x, y):
            return self.b(torch.relu(self.a(x))) + y

    def build():
        torch.manual_seed(0)
        return Two()

    m, xs = build(), (torch.randn(2, 4), torch.randn(2, 3))
    res = prunekit.prune(m, xs, ratio=0.5)
    prunekit.save(m, tmp_path, plan=res.plan, example_inputs=list(xs))
    assert prunekit.io.read_manifest(tmp_path)["example_inputs"]["kind"] == "args"
    torch.testing.assert_close(prunekit.load(tmp_path, build)(*xs), m(*xs), rtol=0, atol=0)


def test_example_inputs_of_another_kind_are_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match="example_inputs"):
        prunekit.save(tiny_cnn(), tmp_path / "x", example_inputs=[XT, 3])
    assert not (tmp_path / "x").exists()


def test_forward_check_catches_weights_that_do_not_rebuild_the_model(folder):
    weights = load_file(folder / "model.safetensors")
    weights["9.weight"] = weights["9.weight"] * 2  # the classifier
    save_file(weights, folder / "model.safetensors")
    refresh_digests(folder)
    with pytest.raises(PlanError, match="inputs.safetensors: output 0 differs"):
        prunekit.load(folder, tiny_cnn)
    loaded = prunekit.load(folder, tiny_cnn, check=False)  # what the files hold
    assert torch.equal(loaded.get_submodule("9").weight, weights["9.weight"])


def test_a_changed_file_is_caught_by_its_digest(folder):
    path = folder / "steps.json"
    path.write_text(path.read_text().replace('"notes": []', '"notes": ["x"]', 1))
    with pytest.raises(PlanError, match=r"^steps.json: SHA-256 differs"):
        prunekit.load(folder, tiny_cnn)


# ------------------------------------------------------------------ paths stay inside
@pytest.mark.parametrize("field, value", [
    ("weights", "../outside/model.safetensors"), ("weights", "/etc/passwd"),
    ("plan", "sub/plan.json"), ("steps", ".."), ("steps", "~/steps.json"),
    ("weights", "model.safetensors\x00"), ("plan", 7)])
def test_manifest_names_must_be_plain_files_in_the_folder(folder, tmp_path, field, value):
    (tmp_path / "outside").mkdir()
    shutil.copy(folder / "model.safetensors", tmp_path / "outside")
    edit_json(folder, "manifest.json", lambda m: m.update({field: value}))
    with pytest.raises(PlanError, match=f"^manifest.json: {field}: .*not a plain file name"):
        prunekit.load(folder, tiny_cnn)


@pytest.mark.parametrize("name", ["model.safetensors", "steps.json", "manifest.json",
                                  "inputs.safetensors"])
def test_symbolic_links_are_refused_even_to_valid_files(folder, tmp_path, name):
    outside = tmp_path / f"outside-{name}"
    shutil.move(folder / name, outside)  # the real file, one level up
    os.symlink(outside, folder / name)
    with pytest.raises(PlanError, match=f"^{name}: is a symbolic link"):
        prunekit.load(folder, tiny_cnn)


def test_a_directory_or_missing_file_is_named(folder):
    (folder / "steps.json").unlink()
    (folder / "steps.json").mkdir()
    with pytest.raises(PlanError, match="^steps.json: is not a regular file"):
        prunekit.load(folder, tiny_cnn)
    (folder / "steps.json").rmdir()
    with pytest.raises(PlanError, match="^steps.json: missing"):
        prunekit.load(folder, tiny_cnn)


def test_save_replaces_a_symbolic_link_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = tmp_path / "ckpt"
    out.mkdir()
    os.symlink(target, out / "model.safetensors")
    prunekit.save(tiny_cnn(), out)
    assert target.read_text() == "keep me"
    assert not (out / "model.safetensors").is_symlink()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_json_files_are_capped_before_parsing(folder, monkeypatch):
    monkeypatch.setattr(prunekit.io, "JSON_CAP", 100)
    with pytest.raises(PlanError, match=r"^steps.json: is \d+ bytes; at most 100"):
        prunekit.load(folder, tiny_cnn)


@pytest.mark.parametrize("text, message", [
    (b"\xff\xfe[]", "not UTF-8"), (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"[NaN]", "NaN is not allowed"), (b"[" + b"9" * 5000 + b"]", "not valid JSON"),
    (b"[1, 2", "not valid JSON"), (b"{}", "expected a list of steps")])
def test_unparseable_json_is_a_plan_error(folder, text, message):
    (folder / "steps.json").write_bytes(text)
    refresh_digests(folder)
    with pytest.raises(PlanError, match=f"^steps.json: .*{message}"):
        prunekit.load(folder, tiny_cnn)


# ------------------------------------------------------------------ plan values
def _channels(steps):
    return next(s["plan"] for s in steps if s["structure"] == "channels")


def test_an_index_out_of_range_names_file_field_tensor_and_size(folder):
    def change(steps):
        cut = _channels(steps)["cuts"][3]
        cut["removed"][0] = cut["size"] + 6
        return steps

    edit_json(folder, "steps.json", change)
    cut = _channels(json.loads((folder / "steps.json").read_text()))["cuts"][3]
    with pytest.raises(PlanError) as err:
        prunekit.load(folder, tiny_cnn)
    assert str(err.value) == (
        f"steps.json: [1].plan.cuts[3].removed: index {cut['size'] + 6} out of range for "
        f"{cut['param']!r} dim {cut['dim']} of size {cut['size']}")
    assert (err.value.file, err.value.field) == ("steps.json", "[1].plan.cuts[3].removed")


@pytest.mark.parametrize("attrs, message", [
    ({"0": {"stride": [1, 1]}}, "may not set 'stride' of a Conv2d"),
    ({"0": {"out_channels": 10 ** 40}}, r"out of range \[1, 8\]"),
    ({"0": {"out_channels": 0}}, r"out of range \[1, 8\]"),
    ({"0": {"out_channels": True}}, r"\['0'\].out_channels: expected an integer, a list"),
    ({"0": {"out_channels": 2.0}}, "expected an integer, a list of integers or null"),
    ({"9": {"in_features": [3]}}, "expected an integer size, got list"),
    ({"2": {"inplace": 1}}, r"\['2'\].inplace: a plan may not set 'inplace' of a ReLU"),
    ({"nope": {"out_channels": 1}}, "the model has no module 'nope'"),
    ({"0": {"__class__": 1}}, "may not set '__class__'"),
])
def test_plan_attributes_are_an_allow_list_of_shrinking_sizes(folder, attrs, message):
    edit_json(folder, "steps.json", lambda s: _channels(s)["attrs"].update(attrs))
    with pytest.raises(PlanError, match=f"^steps.json: \\[1\\].plan.attrs.*{message}"):
        prunekit.load(folder, tiny_cnn)


def test_attribute_that_changes_outputs_is_refused_on_apply_plan_too():
    """The issue's case: ``{"conv1": {"stride": [1, 1]}}`` loaded and changed outputs."""
    m = torchvision.models.resnet18(num_classes=3)
    before = state_of(m)
    plan = Plan(attrs={"conv1": {"stride": [1, 1]}})
    with pytest.raises(PlanError, match="attrs\\['conv1'\\].stride: a plan may not set"):
        apply_plan(m, plan)
    assert m.conv1.stride == (2, 2)
    assert_same_state(before, state_of(m))


def test_config_fields_need_a_config(folder):
    edit_json(folder, "steps.json",
              lambda s: _channels(s)["config"].update(num_attention_heads=1))
    with pytest.raises(PlanError, match=r"config.num_attention_heads: the model has no config"):
        prunekit.load(folder, tiny_cnn)


@pytest.fixture(scope="module")
def gpt2_plan():
    zm = {z.name: z for z in hf_models()}["hf/gpt2"]
    torch.manual_seed(0)
    m = zm.build().eval()
    return zm.build, prunekit.prune(m, zm.inputs(), ratio=0.5).plan


@pytest.mark.parametrize("config, message", [
    ({"no_such_field": 1}, "config has no field 'no_such_field'"),
    ({"n_head": 99}, r"config.n_head: 99 is out of range \[1, 4\]"),
    ({"n_head": "2"}, "expected an integer, a list of integers or null"),
    ({"n_inner": 10 ** 9}, r"config.n_inner: 1000000000 is out of range \[1, \d+\]"),
    ({"rope_theta": 1}, "config has no field"),
    ({"_attn_implementation": 1}, "not a config field name"),
    ({"use_cache": 1}, "holds bool, not a size"),
    ({"to_dict": 1}, "holds method"),
])
def test_config_fields_must_exist_and_hold_sizes(gpt2_plan, config, message):
    build, plan = gpt2_plan
    fresh = build()
    data = plan.to_dict()
    data["config"].update(config)
    before = state_of(fresh)
    with pytest.raises(PlanError, match=message):
        apply_plan(fresh, Plan.from_dict(data))
    assert fresh.config.n_head == 4 and fresh.config.n_inner is None
    assert_same_state(before, state_of(fresh))
    apply_plan(fresh, Plan(config={"vocab_size": 7}))  # an existing size that shrinks
    assert fresh.config.vocab_size == 7


@pytest.mark.parametrize("change, message", [
    (lambda s: s[0]["plan"]["containers"]["3"].update(old_len=4, keys=["0", "1", "2", "3"]),
     r"\[0\].plan.containers\['3'\].old_len: container '3' holds 3 blocks, plan expects 4"),
    (lambda s: s[0]["plan"]["containers"]["3"].update(kept=[5]),
     r"\[0\].plan.containers\['3'\].kept\[0\]: 5 is out of range \[0, 2\]"),
    (lambda s: s[0]["plan"]["containers"].update({"9": s[0]["plan"]["containers"]["3"]}),
     r"\[0\].plan.containers\['9'\]: the model has no nn.ModuleList / nn.Sequential"),
    (lambda s: s[0]["plan"].update(version=2), r"\[0\].plan.version: plan version 2 is newer"),
    (lambda s: s[0]["plan"].update(extra=1), r"\[0\].plan: unknown field\(s\) 'extra'"),
    (lambda s: s[0].update(structure="nope"), r"\[0\].structure: unknown structure 'nope'"),
    (lambda s: s[1]["plan"].update(format="x"), r"\[1\].plan.format: not a prunekit plan"),
    (lambda s: s.append(s[0]), r"\[2\].plan.containers\['3'\].old_len: container '3' holds 2"),
])
def test_structure_steps_are_checked_field_by_field(folder, change, message):
    edit_json(folder, "steps.json", change)
    with pytest.raises(PlanError, match=f"^steps.json: {message}"):
        prunekit.load(folder, tiny_cnn)


def test_a_failed_load_leaves_a_shared_factory_model_as_built(folder):
    """load builds its own model; even a factory returning the caller's model (here the
    second step fails after the first one deleted a block) gets it back unchanged."""
    shared = tiny_cnn()
    before, text = state_of(shared), repr(shared)
    attrs = {n: dict(vars(m)) for n, m in shared.named_modules()}
    edit_json(folder, "steps.json", lambda s: s[1]["plan"]["cuts"][-1].update(param="x"))
    with pytest.raises(PlanError, match="no parameter or buffer 'x'"):
        prunekit.load(folder, lambda: shared)
    assert repr(shared) == text and len(shared[3]) == 3
    assert_same_state(before, state_of(shared))
    for n, m in shared.named_modules():
        assert vars(m).keys() == attrs[n].keys(), n
        assert all(vars(m)[k] is v or vars(m)[k] == v for k, v in attrs[n].items()
                   if not k.startswith("_")), n


def test_a_failed_weight_load_undoes_the_replay(folder):
    shared = tiny_cnn()
    before = state_of(shared)
    weights = load_file(folder / "model.safetensors")
    weights["9.weight"] = torch.zeros(4, 99)
    save_file(weights, folder / "model.safetensors")
    refresh_digests(folder)
    with pytest.raises(PlanError, match=r"^model.safetensors: 9.weight: shape \[4, 99\]"):
        prunekit.load(folder, lambda: shared)
    assert_same_state(before, state_of(shared))
    assert shared[9].in_features == 6


def test_factory_errors_propagate_unchanged(folder):
    def broken():
        raise KeyError("my factory")

    with pytest.raises(KeyError, match="my factory"):
        prunekit.load(folder, broken)


def test_plan_error_is_one_value_error_exported_everywhere():
    assert prunekit.PlanError is prunekit.io.PlanError is prunekit.surgery.PlanError
    assert issubclass(PlanError, ValueError)
    err = PlanError("bad", field="cuts[0]").located("plan.json", "[2].plan")
    assert str(err) == "plan.json: [2].plan.cuts[0]: bad"


# ------------------------------------------------------------------ the allow-list guard
def test_every_registered_handler_has_an_allow_list_entry():
    missing = [k for k in (*BY_TYPE, *BY_NAME) if entry(k) is None]
    assert not missing, f"add these handler keys to prunekit.surgery.allowed.ALLOWED: {missing}"
    assert entry(nn.LSTM) == {"input_size", "hidden_size", "proj_size"}  # for an RNN handler


class _Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.ln = nn.Embedding(20, 16), nn.LayerNorm(16)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)
        self.rms, self.fc1, self.fc2 = nn.RMSNorm(16), nn.Linear(16, 32), nn.Linear(32, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, ids):
        h = self.ln(self.emb(ids))
        h = h + self.mha(h, h, h, need_weights=False)[0]
        h = self.rms(h)
        return self.head((h + self.fc2(torch.relu(self.fc1(h)))).mean(1))


def _convs():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.PReLU(8),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8),
                         nn.ConvTranspose2d(8, 8, 2, stride=2), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


def _timm(kind):
    timm = pytest.importorskip("timm")
    if kind == "vit":
        return timm.models.vision_transformer.VisionTransformer(
            img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=4, num_classes=3)
    return timm.models.swin_transformer.SwinTransformer(
        img_size=16, patch_size=4, embed_dim=16, depths=(1,), num_heads=(2,), window_size=2,
        num_classes=3)


_HF = {z.name: z for z in hf_models()}
GUARD = {
    "torch-tokens": (_Tokens, lambda: torch.randint(0, 20, (2, 5))),
    "torch-convs": (_convs, lambda: torch.randn(2, 3, 8, 8)),
    "timm-vit": (lambda: _timm("vit"), lambda: torch.randn(1, 3, 16, 16)),
    "timm-swin": (lambda: _timm("swin"), lambda: torch.randn(1, 3, 16, 16)),
    **{n: (z.build, z.inputs) for n, z in _HF.items()},
}


@pytest.mark.parametrize("name", list(GUARD))
def test_what_surgery_records_is_in_the_allow_list_and_replays(name):
    """Every attribute a handler changed on these models (one per handler family) is
    allowed for that module's type, and the recorded plan replays on a fresh model."""
    build, inputs = GUARD[name]
    torch.manual_seed(0)
    model, x = build().eval(), inputs()
    res = prunekit.prune(model, x, ratio=0.5)
    mods = dict(model.named_modules())
    outside = {(m, a) for m, attrs in res.plan.attrs.items() for a in attrs
               if a not in allowed_attrs(mods[m])}
    assert res.plan.attrs and not outside, outside
    torch.manual_seed(0)
    fresh = build().eval()
    apply_plan(fresh, Plan.from_json(res.plan.to_json()))
    assert {k: v.shape for k, v in fresh.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}


def test_allow_list_keys_are_module_classes_or_class_names():
    assert all(isinstance(k, str) or issubclass(k, nn.Module) for k in ALLOWED)
    stale = [k for k in ALLOWED if k not in BY_TYPE and k not in BY_NAME]
    assert not stale, f"ALLOWED entries with no registered handler: {stale}"
