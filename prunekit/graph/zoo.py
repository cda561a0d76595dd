"""A model zoo for coverage checks: torchvision, timm and Hugging Face models built from
configs with random weights and small inputs (nothing is downloaded).

Used by the coverage tests and ``benchmarks/zoo_coverage.py``; handy to check a new rule.
The optional packages are imported only when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# torchvision models with more than ~50M parameters or the slowest to trace on CPU: built
# by the full coverage run (benchmark, PRUNEKIT_ZOO=full), left out of the default test
# run to keep CI short.
LARGE = frozenset({
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn", "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14", "regnet_y_16gf",
    "regnet_y_32gf", "regnet_y_128gf", "regnet_x_32gf", "regnet_x_16gf", "convnext_base",
    "convnext_large", "efficientnet_v2_l", "efficientnet_v2_m", "swin_b", "swin_v2_b",
    "wide_resnet101_2", "wide_resnet50_2", "resnext101_32x8d", "resnext101_64x4d",
    "resnet152", "efficientnet_b7", "efficientnet_b6", "maxvit_t", "convnext_small",
    "swin_s", "swin_v2_s", "regnet_x_8gf", "resnet101", "efficientnet_b5",
    "efficientnet_v2_s", "densenet201", "densenet161", "efficientnet_b4", "efficientnet_b3",
})


@dataclass(frozen=True)
class ZooModel:
    """A buildable model: ``build()`` -> module, ``inputs()`` -> example inputs."""

    name: str
    family: str
    build: Callable[[], nn.Module]
    inputs: Callable[[], Any]
    large: bool = False


def _tv_spec(name: str) -> tuple[dict[str, Any], int]:
    if name.startswith("vit_h"):
        return {"image_size": 56}, 56
    if name.startswith("vit"):
        return {"image_size": 64}, 64
    if name.startswith("inception"):
        return {"aux_logits": False, "init_weights": False}, 75
    if name == "googlenet":
        return {"aux_logits": False, "init_weights": False}, 64
    if name.startswith("maxvit"):
        return {}, 224
    return {}, 64


def torchvision_models() -> list[ZooModel]:
    """Every classification model of ``torchvision.models.list_models``, small inputs."""
    import torchvision

    out = []
    for name in torchvision.models.list_models(module=torchvision.models):
        kwargs, size = _tv_spec(name)

        def build(name: str = name, kwargs: dict = kwargs) -> nn.Module:
            return torchvision.models.get_model(name, num_classes=10, **kwargs)

        out.append(ZooModel(f"torchvision/{name}", "torchvision", build,
                            lambda size=size: torch.randn(1, 3, size, size), name in LARGE))
    return out


TIMM = {
    "resnet50": {}, "efficientnet_b0": {}, "vit_small_patch16_224": {"img_size": 64},
    "deit_tiny_patch16_224": {"img_size": 64}, "mixer_b16_224": {"img_size": 64},
    "convnext_tiny": {}, "swin_tiny_patch4_window7_224": {"img_size": 64, "window_size": 2},
}


def timm_models() -> list[ZooModel]:
    """The timm models named in issue 3, at 64x64."""
    out = []
    for name, kwargs in TIMM.items():
        def build(name: str = name, kwargs: dict = kwargs) -> nn.Module:
            import timm

            return timm.create_model(name, pretrained=False, num_classes=10, **kwargs)

        out.append(ZooModel(f"timm/{name}", "timm", build,
                            lambda: torch.randn(1, 3, 64, 64), name == "mixer_b16_224"))
    return out


def _ids() -> torch.Tensor:
    return torch.randint(0, 100, (1, 8), generator=torch.Generator().manual_seed(0))


def _hf(kind: str) -> nn.Module:
    import transformers as tf

    small = {"num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
             "hidden_size": 32}
    if kind == "bert":
        return tf.BertForSequenceClassification(tf.BertConfig(
            vocab_size=100, max_position_embeddings=64, **small))
    if kind == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(
            vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64,
            bos_token_id=0, eos_token_id=0))
    if kind == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(
            vocab_size=100, max_position_embeddings=64, num_key_value_heads=2,
            bos_token_id=0, eos_token_id=0, pad_token_id=0, **small))
    return tf.ViTForImageClassification(tf.ViTConfig(
        image_size=32, patch_size=8, num_labels=3, **small))


def hf_models() -> list[ZooModel]:
    """Hugging Face BERT, GPT-2, Llama (grouped-query attention) and ViT from tiny configs."""
    ids = {"input_ids": _ids()}
    inputs = {
        "bert": lambda: {**ids, "attention_mask": torch.ones(1, 8, dtype=torch.long)},
        "gpt2": lambda: dict(ids), "llama": lambda: dict(ids),
        "vit": lambda: {"pixel_values": torch.randn(1, 3, 32, 32)},
    }
    return [ZooModel(f"hf/{k}", "hf", lambda k=k: _hf(k), v) for k, v in inputs.items()]


def all_models(include_large: bool = False) -> list[ZooModel]:
    """torchvision + timm + Hugging Face models (large ones only when asked)."""
    models = torchvision_models() + timm_models() + hf_models()
    return [m for m in models if include_large or not m.large]


# -- every Hugging Face family, from a tiny config ---------------------------------------

# Widths every family gets where its config has the field (names as the configs spell
# them; a field a config does not know is not passed). Heads 4 of width 8, 2 KV heads.
TINY = {
    "vocab_size": 100, "hidden_size": 32, "d_model": 32, "n_embd": 32, "dim": 32,
    "embed_dim": 32, "num_hidden_layers": 2, "num_layers": 2, "n_layer": 2, "n_layers": 2,
    "num_decoder_layers": 2, "encoder_layers": 2, "decoder_layers": 2,
    "num_attention_heads": 4, "num_heads": 4, "n_head": 4, "n_heads": 4,
    "encoder_attention_heads": 4, "decoder_attention_heads": 4, "attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 8, "d_kv": 8, "intermediate_size": 64,
    "d_ff": 64, "n_inner": 64, "ffn_dim": 64, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
    "hidden_dim": 64, "max_position_embeddings": 64, "n_positions": 64, "n_ctx": 64,
    "max_source_positions": 32, "max_target_positions": 32, "embedding_size": 32,
    "image_size": 32, "patch_size": 8, "num_labels": 3, "num_mel_bins": 16,
    "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 0, "decoder_start_token_id": 0,
}


@dataclass(frozen=True)
class HFFamily:
    """One transformers family: its ``model_type``, the kind of model, the class with a
    head that is built, extra tiny-config fields, modules to keep whole when pruning
    (``ignore``, with the reason in ``why``) and why it is skipped (if it is)."""

    model_type: str
    kind: str  # "decoder", "encoder", "encoder-decoder", "vision"
    model_class: str
    extra: tuple[tuple[str, Any], ...] = ()
    skip: str = ""
    input_name: str = "input_ids"  # or "input_features" (speech)
    ignore: tuple[str, ...] = ()
    why: str = ""

    @property
    def generative(self) -> bool:
        """Decoders and encoder-decoders: ``generate()`` is checked."""
        return self.kind in ("decoder", "encoder-decoder")

    def config(self) -> Any:
        """The tiny config (fields of :data:`TINY` the config knows, then ``extra``)."""
        from transformers import AutoConfig

        cls = type(AutoConfig.for_model(self.model_type))
        known = set(cls().to_dict()) | set(getattr(cls, "attribute_map", {}))
        values = {k: v for k, v in TINY.items() if k in known}
        return cls(**{**values, **dict(self.extra)})

    def build(self) -> nn.Module:
        """The model with random weights (seeded), in eval mode, on CPU."""
        import transformers

        torch.manual_seed(0)
        model = getattr(transformers, self.model_class)(self.config())
        return model.eval()

    def inputs(self) -> dict[str, torch.Tensor]:
        """Example inputs: 8 token ids (5 more for a decoder), or a 32x32 image, or
        a mel spectrogram for speech."""
        g = torch.Generator().manual_seed(0)
        if self.kind == "vision":
            return {"pixel_values": torch.randn(1, 3, 32, 32, generator=g)}
        if self.input_name == "input_features":
            return {"input_features": torch.randn(1, 16, 64, generator=g),
                    "decoder_input_ids": torch.randint(2, 100, (1, 5), generator=g)}
        x = {"input_ids": torch.randint(2, 100, (1, 8), generator=g)}
        if self.kind == "encoder-decoder":
            x["decoder_input_ids"] = torch.randint(2, 100, (1, 5), generator=g)
        return x


HF_FAMILIES: tuple[HFFamily, ...] = (
    HFFamily("gpt2", "decoder", "GPT2LMHeadModel"),
    HFFamily("gpt_neo", "decoder", "GPTNeoForCausalLM",
             (("attention_types", [[["global", "local"], 1]]), ("window_size", 8))),
    HFFamily("gptj", "decoder", "GPTJForCausalLM", (("rotary_dim", 4),)),
    HFFamily("gpt_neox", "decoder", "GPTNeoXForCausalLM"),
    HFFamily("gpt_bigcode", "decoder", "GPTBigCodeForCausalLM"),
    HFFamily("codegen", "decoder", "CodeGenForCausalLM", (("rotary_dim", 4),),
             ignore=("transformer.wte",),
             why="heads stay whole (qkv split in mp_num=4 fixed blocks), and the config "
                 "ties the hidden size to heads x head_dim"),
    HFFamily("opt", "decoder", "OPTForCausalLM"),
    HFFamily("bloom", "decoder", "BloomForCausalLM"),
    HFFamily("falcon", "decoder", "FalconForCausalLM", (("new_decoder_architecture", True),)),
    HFFamily("llama", "decoder", "LlamaForCausalLM"),
    HFFamily("mistral", "decoder", "MistralForCausalLM"),
    HFFamily("mixtral", "decoder", "MixtralForCausalLM"),
    HFFamily("qwen2", "decoder", "Qwen2ForCausalLM"),
    HFFamily("qwen2_moe", "decoder", "Qwen2MoeForCausalLM"),
    HFFamily("qwen3", "decoder", "Qwen3ForCausalLM"),
    HFFamily("qwen3_moe", "decoder", "Qwen3MoeForCausalLM"),
    HFFamily("phi", "decoder", "PhiForCausalLM"),
    HFFamily("phi3", "decoder", "Phi3ForCausalLM"),
    HFFamily("gemma", "decoder", "GemmaForCausalLM"),
    HFFamily("gemma2", "decoder", "Gemma2ForCausalLM"),
    HFFamily("gemma3_text", "decoder", "Gemma3ForCausalLM"),
    HFFamily("olmo", "decoder", "OlmoForCausalLM"),
    HFFamily("olmo2", "decoder", "Olmo2ForCausalLM"),
    HFFamily("stablelm", "decoder", "StableLmForCausalLM"),
    HFFamily("starcoder2", "decoder", "Starcoder2ForCausalLM"),
    HFFamily("cohere", "decoder", "CohereForCausalLM"),
    HFFamily("granite", "decoder", "GraniteForCausalLM"),
    HFFamily("persimmon", "decoder", "PersimmonForCausalLM"),
    HFFamily("xglm", "decoder", "XGLMForCausalLM"),
    HFFamily("biogpt", "decoder", "BioGptForCausalLM"),
    HFFamily("mpt", "decoder", "MptForCausalLM"),
    HFFamily("bert", "encoder", "BertForMaskedLM"),
    HFFamily("roberta", "encoder", "RobertaForMaskedLM"),
    HFFamily("distilbert", "encoder", "DistilBertForMaskedLM"),
    HFFamily("albert", "encoder", "AlbertForMaskedLM"),
    HFFamily("electra", "encoder", "ElectraForMaskedLM"),
    HFFamily("deberta", "encoder", "DebertaForMaskedLM"),
    HFFamily("deberta-v2", "encoder", "DebertaV2ForMaskedLM"),
    HFFamily("xlm-roberta", "encoder", "XLMRobertaForMaskedLM"),
    HFFamily("mpnet", "encoder", "MPNetForMaskedLM"),
    HFFamily("roformer", "encoder", "RoFormerForMaskedLM"),
    HFFamily("megatron-bert", "encoder", "MegatronBertForMaskedLM"),
    HFFamily("ernie", "encoder", "ErnieForMaskedLM"),
    HFFamily("modernbert", "encoder", "ModernBertForMaskedLM"),
    HFFamily("esm", "encoder", "EsmForMaskedLM", ignore=("esm.embeddings",),
             why="heads stay whole (the contact head, sized layers x heads, is not in the "
                 "masked-LM forward), and the config ties the hidden size to the heads"),
    HFFamily("t5", "encoder-decoder", "T5ForConditionalGeneration"),
    HFFamily("mt5", "encoder-decoder", "MT5ForConditionalGeneration"),
    HFFamily("umt5", "encoder-decoder", "UMT5ForConditionalGeneration"),
    HFFamily("bart", "encoder-decoder", "BartForConditionalGeneration"),
    HFFamily("mbart", "encoder-decoder", "MBartForConditionalGeneration"),
    HFFamily("pegasus", "encoder-decoder", "PegasusForConditionalGeneration"),
    HFFamily("marian", "encoder-decoder", "MarianMTModel"),
    HFFamily("blenderbot", "encoder-decoder", "BlenderbotForConditionalGeneration"),
    HFFamily("plbart", "encoder-decoder", "PLBartForConditionalGeneration"),
    HFFamily("m2m_100", "encoder-decoder", "M2M100ForConditionalGeneration"),
    HFFamily("whisper", "encoder-decoder", "WhisperForConditionalGeneration",
             input_name="input_features"),
    HFFamily("vit", "vision", "ViTForImageClassification"),
    HFFamily("deit", "vision", "DeiTForImageClassification"),
    HFFamily("beit", "vision", "BeitForImageClassification"),
    HFFamily("dinov2", "vision", "Dinov2ForImageClassification"),
)


def hf_families() -> list[HFFamily]:
    """The decoder, encoder, encoder-decoder and vision-transformer families that the
    coverage test prunes and rebuilds from their configs (``skip`` says why not)."""
    return list(HF_FAMILIES)
