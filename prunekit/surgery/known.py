"""Attribute fixers for transformers / timm / torchvision modules.

Attention modules keep their head width; the number of heads follows the projection
that was cut. Most attention modules are recognised by their attributes (a head count
and a head width, :func:`generic_heads`); a class name is registered only where the
layout is the class's own (GPT-2's fused ``c_attn``, Swin's bias table). Hugging Face
configs are not updated here: :mod:`prunekit.surgery.hf_config` solves them from the
cut model.
"""

from __future__ import annotations

from torch import nn

from prunekit.surgery.handlers import HEAD_COUNT, HEAD_WIDTH, Ctx, register


def _rows(m: nn.Module, *names: str) -> int | None:
    """Output width of the first existing child projection among ``names``."""
    for name in names:
        child = getattr(m, name, None)
        w = getattr(child, "weight", None)
        if w is not None:
            # transformers' Conv1D stores (in, out)
            return w.shape[1] if type(child).__name__ == "Conv1D" else w.shape[0]
    return None


KV_COUNT = ("num_key_value_heads", "num_kv_heads", "kv_heads", "n_kv_heads")
Q_PROJ = ("q_proj", "q", "query", "q_lin", "query_proj")
K_PROJ = ("k_proj", "k", "key", "k_lin", "key_proj")
# widths that are heads x head width (``embed_dim`` of BART-style attention: its reshape)
HEADS_TIMES_WIDTH = ("inner_dim", "all_head_size", "attn_dim", "embed_dim")


def _first_int(m: nn.Module, names: tuple[str, ...]) -> str | None:
    for name in names:
        v = getattr(m, name, None)
        if isinstance(v, int) and not isinstance(v, bool):
            return name
    return None


FUSED_QKV = ("qkv", "query_key_value", "qkv_proj", "Wqkv", "in_proj")


@register("<heads>")
def generic_heads(m: nn.Module, ctx: Ctx) -> None:
    """Attention modules that keep a head count and a head width as attributes (timm,
    most Hugging Face families): the counts follow the cut projections, the head width
    stays (heads are cut whole). A fused q/k/v projection holds ``kv · (r + 2)`` heads
    with ``r`` query heads per kv head (cut in whole groups, so ``r`` stays)."""
    count, width = _first_int(m, HEAD_COUNT), _first_int(m, HEAD_WIDTH)
    if count is None or width is None:
        return
    d, kv = getattr(m, width), _first_int(m, KV_COUNT)
    q, k, fused = _rows(m, *Q_PROJ), _rows(m, *K_PROJ), _rows(m, *FUSED_QKV)
    if q is not None:
        setattr(m, count, q // d)
        if kv is not None and k is not None:
            setattr(m, kv, k // d)
    elif fused is not None:
        h0 = ctx.old.get(count, getattr(m, count))
        k0 = ctx.old.get(kv, h0) if kv is not None else h0
        r = max(h0 // max(k0, 1), 1)
        groups = fused // (d * (r + 2))
        setattr(m, count, groups * r)
        if kv is not None:
            setattr(m, kv, groups if k0 < h0 else groups * r)
    for total in HEADS_TIMES_WIDTH:
        if isinstance(getattr(m, total, None), int):
            setattr(m, total, getattr(m, count) * d)


@register("GPT2Attention")
def gpt2_attention(m: nn.Module, ctx: Ctx) -> None:
    """``c_attn`` (a Conv1D, stored (in, out)) holds q, k and v side by side."""
    width = _rows(m, "c_attn") // 3
    m.num_heads = width // m.head_dim
    m.split_size = width


@register("LlamaMLP", "MistralMLP", "Qwen2MLP")
def llama_mlp(m: nn.Module, ctx: Ctx) -> None:
    m.intermediate_size = _rows(m, "gate_proj", "up_proj")


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
