"""Hugging Face configs solved from the cut model (prunekit.surgery.hf_config)."""

import copy
import warnings

import pytest
import torch
from support import same_state, state_of
from torch import nn

import prunekit
from prunekit.graph import build_groups
from prunekit.surgery import Plan, SurgeryError, apply_plan, remove_channels
from prunekit.surgery.hf_config import ConfigWarning, replay
from prunekit.surgery.hf_probe import fields

tf = pytest.importorskip("transformers")


def _ids():
    return {"input_ids": torch.randint(2, 100, (1, 8), generator=torch.Generator().manual_seed(0))}


def _tiny(cls_name, cfg_name, **kw):
    torch.manual_seed(0)
    common = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
                  bos_token_id=0, eos_token_id=1, pad_token_id=0)
    return getattr(tf, cls_name)(getattr(tf, cfg_name)(**{**common, **kw})).eval()


def _hidden_group(gs, model):
    emb = model.get_input_embeddings().weight
    name = next(n for n, p in model.named_parameters() if p is emb)
    return next(g for g in gs.groups if any(m.param == name and m.dim == 1 for m in g.members))


def _rebuilds(model, x):
    fresh = type(model)(copy.deepcopy(model.config)).eval()
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(**x).logits, model(**x).logits)


def test_qwen2_head_dim_written_explicitly_when_the_derivation_breaks():
    """Qwen2 derives head_dim = hidden // heads: with only the hidden size cut (32 -> 16)
    that would give 4, so the solved config writes head_dim = 8 explicitly."""
    model, x = _tiny("Qwen2ForCausalLM", "Qwen2Config"), _ids()
    assert getattr(model.config, "head_dim", None) is None
    gs = build_groups(model, x)
    g = _hidden_group(gs, model)
    plan = remove_channels(model, gs, {g.id: list(range(g.size // 2))}, x)
    assert model.config.head_dim == 8 and model.config.hidden_size == 16
    assert model.config.num_attention_heads == 4
    assert plan.config == {"head_dim": 8, "hidden_size": 16} and not plan.notes
    _rebuilds(model, x)


def test_llama_plan_replays_config_and_loads_state_dict():
    model, x = _tiny("LlamaForCausalLM", "LlamaConfig"), _ids()
    res = prunekit.prune(model, x, ratio=0.5)
    assert res.plan.config == {"hidden_size": 16, "intermediate_size": 32,
                               "num_attention_heads": 2, "num_key_value_heads": 1}
    fresh = _tiny("LlamaForCausalLM", "LlamaConfig")
    apply_plan(fresh, Plan.from_json(res.plan.to_json()), x)
    assert fresh.config.to_dict() == model.config.to_dict()
    rebuilt = type(model)(copy.deepcopy(fresh.config))
    rebuilt.load_state_dict(model.state_dict(), strict=True)


def test_plan_written_before_solved_configs_still_replays():
    """Old plans keep flat field names; on a model whose HF part is nested they are set
    on every config that has the field (the old behaviour)."""
    x = _ids()

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.lm = _tiny("LlamaForCausalLM", "LlamaConfig")

        def forward(self, input_ids):
            return self.lm(input_ids=input_ids).logits

    model = Wrapper().eval()
    res = prunekit.prune(model, x, ratio=0.5)
    assert set(res.plan.config) == {"lm:hidden_size", "lm:intermediate_size",
                                    "lm:num_attention_heads", "lm:num_key_value_heads"}
    old = res.plan.to_dict()
    old["config"] = {k.split(":")[1]: v for k, v in old["config"].items()}
    fresh = Wrapper().eval()
    apply_plan(fresh, Plan.from_dict(old), x)
    assert fresh.lm.config.to_dict() == model.lm.config.to_dict()


def test_replay_rejects_a_field_the_config_cannot_take():
    model = _tiny("LlamaForCausalLM", "LlamaConfig")
    with pytest.raises(ValueError, match="text_config.hidden_size"):
        replay(model, {"text_config.hidden_size": 8})


def test_a_derived_scale_is_refused_and_prune_names_the_group():
    """Gemma scales embeddings by sqrt(hidden_size) of the config: a cut hidden size would
    rebuild a different model, so a strict cut fails (model restored) and prune() keeps
    the hidden size whole, named, and cuts the rest; remove_channels' default warns."""
    model, x = _tiny("GemmaForCausalLM", "GemmaConfig", head_dim=8), _ids()
    before, cfg_before = state_of(model), model.config.to_dict()
    gs = build_groups(model, x)
    g = _hidden_group(gs, model)
    with pytest.raises(SurgeryError, match="scalar_embed_scale") as err:
        remove_channels(model, gs, {g.id: list(range(g.size // 2))}, x, configs="strict")
    assert err.value.op == "config"
    assert same_state(before, state_of(model)) and model.config.to_dict() == cfg_before
    with pytest.raises(ValueError, match="configs must be"):
        remove_channels(model, gs, {g.id: [0]}, x, configs="loose")
    probe = copy.deepcopy(model)
    with pytest.warns(ConfigWarning, match="scalar_embed_scale"):  # the default: said
        remove_channels(probe, build_groups(probe, x), {g.id: list(range(g.size // 2))}, x)
    res = prunekit.prune(model, x, ratio=0.5)
    assert any(s.get("group") == g.id and "scalar_embed_scale" in s["reason"]
               for s in res.skipped)
    assert model.config.hidden_size == 32 and model.config.num_attention_heads == 2
    _rebuilds(model, x)


def test_bert_hidden_cut_alone_is_named_in_notes_and_warns():
    """BERT derives the head size as hidden / heads: cutting only the hidden size cannot be
    described (other groups could still be cut to fix it, so the cut is not refused)."""
    model = _tiny("BertForMaskedLM", "BertConfig")
    x = {**_ids(), "attention_mask": torch.ones(1, 8, dtype=torch.long)}
    gs = build_groups(model, x)
    g = _hidden_group(gs, model)
    with pytest.warns(ConfigWarning, match="does not rebuild"):
        plan = remove_channels(model, gs, {g.id: list(range(g.size // 2))}, x)
    assert plan.notes and "does not rebuild" in plan.notes[0]


class WideConfig(tf.PretrainedConfig):
    """Any PretrainedConfig: per-layer widths in a list, or one width for all layers."""

    model_type = "prunekit-test-wide"

    def __init__(self, width=8, ffn=(16, 16), **kw):
        self.width = width
        self.ffn = list(ffn) if isinstance(ffn, (list, tuple)) else ffn
        super().__init__(**kw)


class WideNet(tf.PreTrainedModel):
    config_class = WideConfig

    def __init__(self, config):
        super().__init__(config)
        ffn = config.ffn if isinstance(config.ffn, list) else [config.ffn] * 2
        self.inp = nn.Linear(4, config.width)
        self.ups = nn.ModuleList(nn.Linear(config.width, f) for f in ffn)
        self.downs = nn.ModuleList(nn.Linear(f, config.width) for f in ffn)
        self.out = nn.Linear(config.width, 2)
        self.post_init()

    def forward(self, x):
        h = self.inp(x)
        for up, down in zip(self.ups, self.downs, strict=True):
            h = h + down(torch.relu(up(h)))
        return self.out(h)


def test_per_layer_list_fields_get_per_layer_values():
    torch.manual_seed(0)
    model, x = WideNet(WideConfig()).eval(), torch.randn(3, 4)
    assert fields(model.config) == {"width": 8, "ffn[0]": 16, "ffn[1]": 16}
    gs = build_groups(model, x)
    plan = remove_channels(model, gs, {"ups.0": list(range(10)), "inp": [0, 1]}, x)
    assert plan.config == {"width": 6, "ffn": [6, 16]} and not plan.notes
    fresh = WideNet(copy.deepcopy(model.config))
    fresh.load_state_dict(model.state_dict(), strict=True)


def test_one_value_for_layers_that_differ_is_said_not_guessed():
    torch.manual_seed(0)
    model, x = WideNet(WideConfig(ffn=16)).eval(), torch.randn(3, 4)
    gs = build_groups(model, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = remove_channels(model, gs, {"ups.0": list(range(8))}, x)
    assert model.config.ffn == 16
    assert any("ffn is one value, the pruned model needs 8, 16" in n
               for n in plan.notes)
    assert any(issubclass(w.category, ConfigWarning) for w in caught)
    with torch.no_grad():
        model(x)  # the model itself is fine: only its config cannot describe it


def test_nested_configs_of_an_encoder_decoder_keep_their_identity():
    """EncoderDecoderModel: fields live in sub-configs (``encoder.intermediate_size``),
    which its modules hold too; restores after prune's probes keep them the same objects.
    The encoder's hidden size is a model output (kept), so its heads, whose width the
    config derives from it, stay whole, named."""
    kw = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    cfg = tf.EncoderDecoderConfig.from_encoder_decoder_configs(
        tf.BertConfig(**kw), tf.BertConfig(**kw, is_decoder=True, add_cross_attention=True))
    torch.manual_seed(0)
    model = tf.EncoderDecoderModel(config=cfg).eval()
    g = torch.Generator().manual_seed(0)
    x = {"input_ids": torch.randint(2, 100, (1, 8), generator=g),
         "decoder_input_ids": torch.randint(2, 100, (1, 5), generator=g)}
    res = prunekit.prune(model, x, ratio=0.5)
    assert res.plan.config == {"encoder.intermediate_size": 32, "decoder.intermediate_size": 32}
    assert model.config.encoder is model.encoder.config
    assert model.config.decoder is model.decoder.config
    assert any("encoder.encoder.layer.0.attention" in s.get("group", "") for s in res.skipped)
    fresh = type(model)(config=copy.deepcopy(model.config)).eval()
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(**x).logits, model(**x).logits)


def test_solved_values_the_config_refuses_are_taken_back_and_said():
    """BERT with one head of four cut in every layer and the hidden size kept: 32 / 3 is
    no head width, BertConfig refuses to build, so the config stays as it was (it still
    builds), the note says why and a ConfigWarning is raised."""
    model = _tiny("BertForMaskedLM", "BertConfig")
    x = {**_ids(), "attention_mask": torch.ones(1, 8, dtype=torch.long)}
    gs = build_groups(model, x)
    heads = [g.id for g in gs.groups if g.id.endswith("attention.self.query")]
    assert len(heads) == 2
    with pytest.warns(ConfigWarning, match="does not build"):
        plan = remove_channels(model, gs, {g: [0] for g in heads}, x)
    assert model.config.num_attention_heads == 4 and "num_attention_heads" not in plan.config
    type(model)(copy.deepcopy(model.config))  # still builds
