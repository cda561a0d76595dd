"""Attribute fixers: one handler per module type, in a registry.

After the tensors are cut, a handler brings a module's size attributes in line with its
new tensors (``in_channels``, ``num_features``, ``normalized_shape``, ``num_heads`` ...).
A handler is ``fn(module, ctx) -> dict`` and may return Hugging Face config *votes*
(``{"num_attention_heads": 6}``); surgery sets a config field only when all votes agree.
Lookup goes by class (MRO, for torch.nn types) and then by class name (for
transformers/timm/torchvision classes, so that nothing heavy is imported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

Handler = Callable[[nn.Module, "Ctx"], dict[str, Any] | None]

BY_TYPE: dict[type, Handler] = {}
BY_NAME: dict[str, Handler] = {}


@dataclass
class Ctx:
    """What a handler may read: attribute values before surgery and sizes that live only
    in attributes (``{"normalized_shape": (new sizes...)}``)."""

    old: dict[str, Any]
    sizes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def register(*keys: type | str) -> Callable[[Handler], Handler]:
    """Register a handler for module classes or class names."""

    def decorate(fn: Handler) -> Handler:
        for key in keys:
            table = BY_NAME if isinstance(key, str) else BY_TYPE
            if key in table:
                raise ValueError(f"surgery handler for {key!r} registered twice")
            table[key] = fn
        return fn

    return decorate


def lookup(module: nn.Module) -> Handler | None:
    """The handler for ``module``: by class MRO, then by class name, then by duck type."""
    for cls in type(module).__mro__:
        if cls in BY_TYPE:
            return BY_TYPE[cls]
    for cls in type(module).__mro__:
        if cls.__name__ in BY_NAME:
            return BY_NAME[cls.__name__]
    if _has_int(module, HEAD_COUNT) and _has_int(module, HEAD_WIDTH):
        return BY_NAME["<heads>"]
    return None


# attention modules found by their attributes: a head count and a head width
HEAD_COUNT = ("num_heads", "n_heads", "num_attention_heads", "n_head")
HEAD_WIDTH = ("head_dim", "key_value_proj_dim", "attention_head_size", "head_size",
              "dim_per_head")


def _has_int(module: nn.Module, names: tuple[str, ...]) -> bool:
    return any(isinstance(getattr(module, n, None), int) for n in names)


@register(nn.modules.conv._ConvNd)
def conv(m: nn.Module, ctx: Ctx) -> None:
    w = m.weight
    g_old = ctx.old["groups"]
    if m.transposed:
        if g_old == 1:
            m.in_channels, m.out_channels = w.shape[0], w.shape[1]
        else:
            m.groups = w.shape[0] // (ctx.old["in_channels"] // g_old)
            m.in_channels, m.out_channels = w.shape[0], m.groups * w.shape[1]
        return
    if g_old == 1:
        m.out_channels, m.in_channels = w.shape[0], w.shape[1]
    else:
        m.groups = w.shape[0] // (ctx.old["out_channels"] // g_old)
        m.out_channels, m.in_channels = w.shape[0], m.groups * w.shape[1]


@register(nn.Linear)
def linear(m: nn.Module, ctx: Ctx) -> None:
    m.out_features, m.in_features = m.weight.shape[0], m.weight.shape[1]


@register(nn.Bilinear)
def bilinear(m: nn.Module, ctx: Ctx) -> None:
    m.out_features, m.in1_features, m.in2_features = m.weight.shape


@register(nn.modules.batchnorm._NormBase)
def norm_base(m: nn.Module, ctx: Ctx) -> None:
    for t in (m.weight, m.running_mean):
        if t is not None:
            m.num_features = t.shape[0]
            return


@register(nn.LayerNorm, nn.RMSNorm)
def layer_norm(m: nn.Module, ctx: Ctx) -> None:
    if m.weight is not None:
        m.normalized_shape = tuple(m.weight.shape)
    elif "normalized_shape" in ctx.sizes:
        m.normalized_shape = tuple(ctx.sizes["normalized_shape"])


@register(nn.GroupNorm)
def group_norm(m: nn.Module, ctx: Ctx) -> None:
    c_old, g_old = ctx.old["num_channels"], ctx.old["num_groups"]
    if m.weight is not None:
        c = m.weight.shape[0]
    else:
        c = ctx.sizes.get("num_channels", (c_old,))[0]
    m.num_channels = c
    m.num_groups = 1 if g_old == 1 else c // (c_old // g_old)


@register(nn.Embedding, nn.EmbeddingBag)
def embedding(m: nn.Module, ctx: Ctx) -> None:
    m.embedding_dim = m.weight.shape[1]


@register(nn.PReLU)
def prelu(m: nn.Module, ctx: Ctx) -> None:
    m.num_parameters = m.weight.numel()


@register(nn.MultiheadAttention)
def multihead_attention(m: nn.Module, ctx: Ctx) -> None:
    if m.in_proj_weight is not None:
        m.embed_dim = m.in_proj_weight.shape[1]
        m.kdim = m.vdim = m.embed_dim
        m.head_dim = m.embed_dim // m.num_heads


_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _rnn_shapes(m: nn.Module) -> dict[str, tuple[int, ...]]:
    """The shape every flat weight of ``m`` must have for its current attributes."""
    g, h, p = _RNN_GATES[m.mode], m.hidden_size, m.proj_size
    out, dirs = p or h, 2 if m.bidirectional else 1
    shapes = {}
    for layer in range(m.num_layers):
        for suffix in ("", "_reverse")[:dirs]:
            s = f"_l{layer}{suffix}"
            shapes[f"weight_ih{s}"] = (g * h, m.input_size if layer == 0 else dirs * out)
            shapes[f"weight_hh{s}"] = (g * h, out)
            if m.bias:
                shapes[f"bias_ih{s}"] = shapes[f"bias_hh{s}"] = (g * h,)
            if p:
                shapes[f"weight_hr{s}"] = (p, h)
    return shapes


@register(nn.RNNBase)
def recurrent(m: nn.Module, ctx: Ctx) -> None:
    """``nn.LSTM``/``nn.GRU``/``nn.RNN``: sizes from layer 0's weights, every weight checked
    against them (one ``hidden_size``/``proj_size`` for all layers and directions), then
    ``flatten_parameters()`` so cuDNN gets one contiguous weight buffer again (a no-op on
    CPU; the module keeps the same Parameter objects, so ``_flat_weights`` stays valid)."""
    m.input_size = m.weight_ih_l0.shape[1]
    m.hidden_size = m.weight_ih_l0.shape[0] // _RNN_GATES[m.mode]
    if m.proj_size:
        m.proj_size = m.weight_hr_l0.shape[0]
        if m.proj_size >= m.hidden_size:
            raise ValueError(f"{type(m).__name__}: proj_size {m.proj_size} would not be "
                             f"smaller than hidden_size {m.hidden_size} (torch requires it)")
    for name, shape in _rnn_shapes(m).items():
        if tuple(getattr(m, name).shape) != shape:
            raise ValueError(f"{type(m).__name__}.{name} has shape "
                             f"{tuple(getattr(m, name).shape)}, expected {shape}")
    m.flatten_parameters()


@register(nn.RNNCellBase)
def recurrent_cell(m: nn.Module, ctx: Ctx) -> None:
    """``nn.LSTMCell``/``nn.GRUCell``/``nn.RNNCell``: sizes from the weights."""
    m.input_size = m.weight_ih.shape[1]
    m.hidden_size = m.weight_hh.shape[1]
