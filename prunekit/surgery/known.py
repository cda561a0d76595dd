"""Attribute fixers for transformers / timm / torchvision classes, keyed by class name.

Attention modules keep their head width; the number of heads follows the projection
that was cut. MLP blocks vote for the config's ``intermediate_size``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from prunekit.surgery.handlers import Ctx, register


def _rows(m: nn.Module, *names: str) -> int | None:
    """Output width of the first existing child projection among ``names``."""
    for name in names:
        child = getattr(m, name, None)
        w = getattr(child, "weight", None)
        if w is not None:
            # transformers' Conv1D stores (in, out)
            return w.shape[1] if type(child).__name__ == "Conv1D" else w.shape[0]
    return None


@register("<heads>")
def generic_heads(m: nn.Module, ctx: Ctx) -> None:
    """Modules with ``num_heads`` and ``head_dim`` (timm Attention, WindowAttention)."""
    qkv = _rows(m, "qkv")
    q = _rows(m, "q", "q_proj", "query")
    if qkv is not None:
        m.num_heads = qkv // (3 * m.head_dim)
    elif q is not None:
        m.num_heads = q // m.head_dim
    if isinstance(getattr(m, "attn_dim", None), int):
        m.attn_dim = m.num_heads * m.head_dim


@register("GPT2Attention")
def gpt2_attention(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    width = _rows(m, "c_attn") // 3
    m.num_heads = width // m.head_dim
    m.split_size = width
    return {"n_head": m.num_heads}


@register("BertSelfAttention", "ViTSelfAttention", "RobertaSelfAttention",
          "BertSdpaSelfAttention", "DeiTSelfAttention")
def bert_attention(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    m.num_attention_heads = _rows(m, "query") // m.attention_head_size
    m.all_head_size = m.num_attention_heads * m.attention_head_size
    return {"num_attention_heads": m.num_attention_heads}


@register("LlamaAttention", "MistralAttention", "Qwen2Attention", "Qwen3Attention")
def llama_attention(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    heads = _rows(m, "q_proj") // m.head_dim
    kv = _rows(m, "k_proj") // m.head_dim
    for attr, value in (("num_heads", heads), ("num_key_value_heads", kv)):
        if isinstance(getattr(m, attr, None), int):
            setattr(m, attr, value)
    return {"num_attention_heads": heads, "num_key_value_heads": kv}


@register("LlamaMLP", "MistralMLP", "Qwen2MLP")
def llama_mlp(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    m.intermediate_size = _rows(m, "gate_proj", "up_proj")
    return {"intermediate_size": m.intermediate_size}


@register("BertIntermediate", "ViTIntermediate", "RobertaIntermediate")
def bert_intermediate(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    return {"intermediate_size": _rows(m, "dense")}


@register("GPT2MLP")
def gpt2_mlp(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    return {"n_inner": _rows(m, "c_fc")}


@register("Conv1D")
def hf_conv1d(m: nn.Module, ctx: Ctx) -> None:
    m.nf = m.weight.shape[1]
    if isinstance(getattr(m, "nx", None), int):
        m.nx = m.weight.shape[0]


@register("VisionTransformer")
def tv_vision_transformer(m: nn.Module, ctx: Ctx) -> None:
    """torchvision ViT reads ``self.hidden_dim`` in ``_process_input``."""
    proj = getattr(m, "conv_proj", None)
    if proj is not None and isinstance(getattr(m, "hidden_dim", None), int):
        m.hidden_dim = proj.out_channels


@register("WindowAttention", "ShiftedWindowAttention", "ShiftedWindowAttentionV2")
def window_attention(m: nn.Module, ctx: Ctx) -> None:
    """Swin: the relative position bias table has one column per head."""
    table = getattr(m, "relative_position_bias_table", None)
    if table is not None:
        m.num_heads = table.shape[-1]
    if isinstance(getattr(m, "head_dim", None), int) and _rows(m, "qkv") is not None:
        m.num_heads = _rows(m, "qkv") // (3 * m.head_dim)


def _width(m: nn.Module, path: str) -> int | None:
    """Embedding dim / out channels of the child at dotted ``path`` (None if absent)."""
    for part in path.split("."):
        m = getattr(m, part, None)
        if m is None:
            return None
    w = getattr(m, "weight", None)
    if w is None:
        return None
    return w.shape[1] if isinstance(m, nn.Embedding) else w.shape[0]


@register("BertEmbeddings", "RobertaEmbeddings")
def bert_embeddings(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    return {"hidden_size": _width(m, "word_embeddings")}


@register("ViTEmbeddings")
def vit_embeddings(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    return {"hidden_size": _width(m, "patch_embeddings.projection")}


@register("LlamaModel", "MistralModel", "Qwen2Model")
def llama_model(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    return {"hidden_size": _width(m, "embed_tokens")}


@register("GPT2Model")
def gpt2_model(m: nn.Module, ctx: Ctx) -> dict[str, Any]:
    return {"n_embd": _width(m, "wte")}


@register("ViTAttention", "DeiTAttention")
def vit_attention(m: nn.Module, ctx: Ctx) -> dict[str, Any] | None:
    """transformers >= 5 ViT: ``num_attention_heads`` + ``head_dim`` + ``q_proj``."""
    if isinstance(getattr(m, "head_dim", None), int) and _rows(m, "q_proj") is not None:
        m.num_attention_heads = _rows(m, "q_proj") // m.head_dim
        return {"num_attention_heads": m.num_attention_heads}
    return None
