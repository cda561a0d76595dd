"""prunekit.save / prunekit.load without pickle; ONNX export of a pruned model."""

import json

import numpy as np
import pytest
import torch
import torchvision

import prunekit
from prunekit.graph.zoo import hf_models

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
    with pytest.raises(ValueError):
        prunekit.load(file, _resnet)


def test_plan_that_does_not_fit_the_factory_is_rejected(tmp_path, pruned):
    m, res = pruned
    prunekit.save(m, tmp_path, plan=res.plan)
    with pytest.raises(ValueError):
        prunekit.load(tmp_path, lambda: torchvision.models.resnet34(num_classes=7))
    with pytest.raises(TypeError):
        prunekit.load(tmp_path, lambda: "not a model")


def test_round_trip_tied_weights_hf_gpt2(tmp_path):
    zm = {z.name: z for z in hf_models()}["hf/gpt2"]
    torch.manual_seed(0)
    m = zm.build().eval()
    x = zm.inputs()
    res = prunekit.prune(m, x, ratio=0.5)
    prunekit.save(m, tmp_path, plan=res.plan)
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
