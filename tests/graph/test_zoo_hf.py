"""Hugging Face models from tiny configs: heads and FFN widths pruned, generate() works."""

import pytest
import torch
from _zoo_check import check

from prunekit.graph.zoo import hf_models

MODELS = {m.name: m for m in hf_models()}


def _ffn(model):
    ends = ("intermediate.dense", "gate_proj", "fc1")
    out = [m.out_features for n, m in model.named_modules()
           if isinstance(m, torch.nn.Linear) and n.endswith(ends)]
    return out + [m.nf for n, m in model.named_modules() if n.endswith("mlp.c_fc")]


@pytest.mark.parametrize("name", list(MODELS))
def test_heads_and_ffn_pruned(name):
    model, res = check(MODELS[name])
    cfg = model.config
    heads = getattr(cfg, "num_attention_heads", None) if name != "hf/gpt2" else cfg.n_head
    assert heads == 2, res.plan.config
    hidden = cfg.n_embd if name == "hf/gpt2" else cfg.hidden_size
    assert hidden == 16, res.plan.config
    widths = _ffn(model)
    assert widths and all(2 * w <= w0 for w, w0 in zip(widths, _ffn(MODELS[name].build())))
    if name == "hf/llama":
        assert cfg.num_key_value_heads == 1
        assert all(m.k_proj.out_features == 8 for m in model.modules()
                   if type(m).__name__ == "LlamaAttention")


@pytest.mark.parametrize("name", ["hf/gpt2", "hf/llama"])
def test_generate_after_pruning(name):
    model, _ = check(MODELS[name])
    ids = MODELS[name].inputs()["input_ids"]
    out = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert out.shape == (1, ids.shape[1] + 3)
