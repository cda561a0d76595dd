"""Layer removal on tiny Hugging Face BERT / GPT-2 / Llama (GQA) configs."""

from __future__ import annotations

import pytest
import torch
from depth_models import tiny_hf

from prunekit.structures import prune_depth, remove_blocks

LAYERS = {"bert": "encoder.layer", "gpt2": "transformer.h", "llama": "model.layers"}


def layer_idx_values(model, kind):
    layers = model.get_submodule(LAYERS[kind])
    return [m.layer_idx for layer in layers for m in layer.modules()
            if isinstance(getattr(m, "layer_idx", None), int)]


@pytest.mark.parametrize("kind", ["bert", "gpt2", "llama"])
def test_remove_layers_updates_config_and_layer_idx(kind, ids):
    m = tiny_hf(kind)
    remove_blocks(m, [f"{LAYERS[kind]}.0", f"{LAYERS[kind]}.2"], ids)
    assert m.config.num_hidden_layers == 2 and len(m.get_submodule(LAYERS[kind])) == 2
    idx = layer_idx_values(m, kind)
    assert idx and sorted(set(idx)) == [0, 1]
    out = m(**ids)
    assert out[0].shape[:2] == ids["input_ids"].shape


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_generate_with_kv_cache_after_removal(kind, ids):
    m = tiny_hf(kind)
    prune_depth(m, ids, n_blocks=2, method="loss")
    kw = dict(max_new_tokens=6, do_sample=False, min_new_tokens=6)
    cached = m.generate(ids["input_ids"], use_cache=True, **kw)
    uncached = m.generate(ids["input_ids"], use_cache=False, **kw)
    assert cached.shape == (2, 7 + 6)
    assert torch.equal(cached, uncached)  # the KV cache is indexed right after renumbering


def test_zeroed_llama_layer_is_free(ids):
    m = tiny_hf("llama")
    layer = m.model.layers[1]
    with torch.no_grad():
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
        dense = m(**ids).logits
    remove_blocks(m, ["model.layers.1"], ids)
    with torch.no_grad():
        assert (m(**ids).logits - dense).abs().max() < 1e-5


def test_gpt2_tied_embeddings_stay_tied(ids):
    m = tiny_hf("gpt2")
    assert m.lm_head.weight is m.transformer.wte.weight
    prune_depth(m, ids, n_blocks=1)
    assert m.lm_head.weight is m.transformer.wte.weight


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_save_pretrained_from_pretrained(kind, ids, tmp_path):
    m = tiny_hf(kind)
    prune_depth(m, ids, n_blocks=1)
    m.save_pretrained(tmp_path)
    m2 = type(m).from_pretrained(tmp_path).eval()
    assert m2.config.num_hidden_layers == 3
    with torch.no_grad():
        assert torch.equal(m(**ids)[0], m2(**ids)[0])


def test_hf_too_many_layers_untouched(ids):
    m = tiny_hf("llama")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match="only 4 removable"):
        prune_depth(m, ids, n_blocks=9)
    assert m.config.num_hidden_layers == 4 and len(m.model.layers) == 4
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_plan_replay_on_fresh_hf_model_without_inputs(ids):
    from prunekit.structures import apply_depth_plan

    m, fresh = tiny_hf("gpt2"), tiny_hf("gpt2")  # same seed: same weights
    plan = prune_depth(m, ids, n_blocks=2).plan
    apply_depth_plan(fresh, plan.to_dict())
    assert fresh.config.n_layer == 2 and layer_idx_values(fresh, "gpt2") == [0, 1]
    with torch.no_grad():
        assert torch.equal(fresh(**ids).logits, m(**ids).logits)
