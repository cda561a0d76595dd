"""Parameter and multiply-accumulate (MAC) counting.

The MAC counter is our own. It runs one forward pass under a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` and sees every ATen operator that
actually executes — module calls, functional calls, ``torch.einsum`` (lowered to ``bmm``),
``@``, fused attention fast paths — and attributes each one to the innermost module that
was running (found with forward pre/post hooks).

Counting policy (one MAC = one multiply followed by one add; FLOPs ≈ 2 × MACs):

* convolution (any dim, grouped, dilated, transposed):
  ``N · C_out · ∏out_spatial · (C_in / groups) · ∏kernel`` (transposed: input spatial size);
* ``mm``/``addmm``/``bmm``/``baddbmm``/``mv``/``addmv``/``dot`` — ``m·k·n`` per batch;
  ``nn.Linear``, ``@``, ``torch.matmul`` and ``torch.einsum`` all lower to these;
* scaled dot-product attention: ``B · H · L · S · (E_qk + E_v)`` (``QKᵀ`` and ``AV``);
  a causal mask is *not* discounted (as in ``torch.utils.flop_counter``);
* PyTorch's fused fast paths ``_native_multi_head_attention`` and
  ``_transformer_encoder_layer_fwd`` are expanded into their projections, attention and
  feed-forward matrix products.
* recurrent layers (``nn.LSTM``/``nn.GRU``/``nn.RNN``): every token meets every gate
  matrix once, ``tokens · Σ numel(W_ih, W_hh, W_hr)`` per layer and direction. The
  reference path lowers to ``addmm``/``mm`` and is counted by those; the fused kernels
  (oneDNN ``mkldnn_rnn_layer`` on CPU, ``_cudnn_rnn``, ``miopen_rnn``) get this formula,
  so both paths give the same count. Cells (``nn.LSTMCell``) lower to matrix products.

Not counted (they are not multiply-accumulates of a weight, and conventions disagree):
bias additions, normalization (BatchNorm folds into the preceding conv at inference),
pooling, activations, softmax, element-wise arithmetic, embedding look-ups.
docs/measure.md compares this policy with fvcore, ptflops and ``torch.utils.flop_counter``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from prunekit.inputs import Inputs, call_model, inference_mode_of

aten = torch.ops.aten

MacFormula = Callable[[tuple, dict, Any], int]
MAC_FORMULAS: dict[Any, MacFormula] = {}


def register_mac_formula(*packets: Any) -> Callable[[MacFormula], MacFormula]:
    """Register ``formula(args, kwargs, out) -> MACs`` for ATen overload packets."""

    def decorate(formula: MacFormula) -> MacFormula:
        for packet in packets:
            MAC_FORMULAS[packet] = formula
        return formula

    return decorate


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape)


def _optional(name: str) -> Any:
    return getattr(aten, name, None)


@register_mac_formula(aten.mm, aten.addmm, aten._addmm_activation, _optional("_int_mm"))
def _mm_macs(args: tuple, kwargs: dict, out: Any) -> int:
    a, b = (args[1], args[2]) if _is_addmm(args) else args[:2]
    m, k = _shape(a)
    return m * k * _shape(b)[1]


def _is_addmm(args: tuple) -> bool:
    """``addmm(bias, a, b)`` has three tensor arguments; ``mm(a, b)`` has two."""
    return len(args) >= 3 and isinstance(args[2], torch.Tensor)


@register_mac_formula(aten.bmm, aten.baddbmm)
def _bmm_macs(args: tuple, kwargs: dict, out: Any) -> int:
    a, b = (args[1], args[2]) if _is_addmm(args) else args[:2]
    batch, m, k = _shape(a)
    return batch * m * k * _shape(b)[2]


@register_mac_formula(aten.mv, aten.addmv)
def _mv_macs(args: tuple, kwargs: dict, out: Any) -> int:
    mat = args[1] if _is_addmm(args) else args[0]
    return math.prod(_shape(mat))


@register_mac_formula(aten.dot, aten.vdot)
def _dot_macs(args: tuple, kwargs: dict, out: Any) -> int:
    return args[0].numel()


def _conv_packets(*names: str) -> list[Any]:
    return [_optional(name) for name in names]


def _conv_positions_macs(x: torch.Tensor, weight: torch.Tensor, out: Any, transposed: bool) -> int:
    """``N · C · ∏spatial · ∏weight.shape[1:]``: output positions for a direct convolution
    (``weight`` is ``C_out × C_in/g × k…``), input positions for a transposed one
    (``weight`` is ``C_in × C_out/g × k…``)."""
    n, channels, *spatial = _shape(x) if transposed else _shape(out)
    return n * channels * math.prod(spatial) * math.prod(_shape(weight)[1:])


@register_mac_formula(*_conv_packets("convolution", "_convolution", "convolution_overrideable"))
def _conv_macs(args: tuple, kwargs: dict, out: Any) -> int:
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    return _conv_positions_macs(args[0], args[1], out, transposed)


@register_mac_formula(
    *_conv_packets(
        "cudnn_convolution", "mkldnn_convolution", "_slow_conv2d_forward", "slow_conv3d_forward",
        "slow_conv_dilated2d", "slow_conv_dilated3d", "_nnpack_spatial_convolution",
    )
)
def _direct_conv_macs(args: tuple, kwargs: dict, out: Any) -> int:
    return _conv_positions_macs(args[0], args[1], out, transposed=False)


@register_mac_formula(
    *_conv_packets("cudnn_convolution_transpose", "slow_conv_transpose2d", "slow_conv_transpose3d")
)
def _transposed_conv_macs(args: tuple, kwargs: dict, out: Any) -> int:
    return _conv_positions_macs(args[0], args[1], out, transposed=True)


def _attention_macs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> int:
    """MACs of ``softmax(QKᵀ)V`` for ``(…, L, E)`` queries and ``(…, S, E)`` keys/values."""
    *batch, length, e_qk = _shape(q)
    source, e_v = _shape(k)[-2], _shape(v)[-1]
    return math.prod(batch) * length * source * (e_qk + e_v)


_SDPA_PACKETS = [
    _optional(name)
    for name in (
        "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_fused_attention_overrideable",
    )
]


@register_mac_formula(*_SDPA_PACKETS)
def _sdpa_macs(args: tuple, kwargs: dict, out: Any) -> int:
    return _attention_macs(args[0], args[1], args[2])


@register_mac_formula(aten._native_multi_head_attention)
def _native_mha_macs(args: tuple, kwargs: dict, out: Any) -> int:
    """query/key/value ``(B, L|S, E)``: q, k, v projections, attention, output projection."""
    query, key, value, embed_dim = args[0], args[1], args[2], int(args[3])
    tokens_q = query.numel() // embed_dim
    projections = (query.numel() + key.numel() + value.numel()) * embed_dim
    return projections + tokens_q * embed_dim * embed_dim + _attention_macs(query, key, value)


@register_mac_formula(aten._transformer_encoder_layer_fwd)
def _encoder_layer_macs(args: tuple, kwargs: dict, out: Any) -> int:
    """Self-attention (as above) plus the two feed-forward matrix products."""
    src, embed_dim, ffn_weight_1 = args[0], int(args[1]), args[14]
    tokens = src.numel() // embed_dim
    attention = _native_mha_macs((src, src, src, embed_dim), {}, out)
    return attention + 2 * tokens * embed_dim * ffn_weight_1.shape[0]


def _tokens(x: torch.Tensor) -> int:
    """Time steps × batch of a sequence ``(T, B, F)``/``(B, T, F)`` or packed ``(N, F)``."""
    return x.numel() // x.shape[-1]


@register_mac_formula(_optional("mkldnn_rnn_layer"))
def _mkldnn_rnn_macs(args: tuple, kwargs: dict, out: Any) -> int:
    """One layer and direction: ``(input, weight_ih, weight_hh, bias_ih, bias_hh, ...)``."""
    return _tokens(args[0]) * (args[1].numel() + args[2].numel())


@register_mac_formula(_optional("_cudnn_rnn"), _optional("miopen_rnn"))
def _fused_rnn_macs(args: tuple, kwargs: dict, out: Any) -> int:
    """All layers at once: ``(input, weights, ...)``; matrices are the 2-D weights."""
    return _tokens(args[0]) * sum(w.numel() for w in args[1] if w.dim() == 2)


MAC_FORMULAS.pop(None, None)


@dataclass
class MacProfile:
    """Result of one counted forward pass.

    Attributes
    ----------
    total : int
        All multiply-accumulates.
    by_module : dict[str, int]
        MACs of operators executed directly by each module (its own, not its children's);
        ``""`` is the root model. Keys are names from ``model.named_modules()``.
    by_op : dict[str, int]
        MACs per ATen operator (e.g. ``"aten.convolution"``).
    """

    total: int = 0
    by_module: dict[str, int] = field(default_factory=dict)
    by_op: dict[str, int] = field(default_factory=dict)


class _MacMode(TorchDispatchMode):
    """Adds the MACs of each executed ATen op to the module on top of ``stack``."""

    def __init__(self, stack: list[str]) -> None:
        super().__init__()
        self.stack = stack
        self.by_module: Counter[str] = Counter()
        self.by_op: Counter[str] = Counter()

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        """Opt out of torch's default wrapping of ``__torch_dispatch__`` in
        ``torch._dynamo.disable``, which imports Dynamo (seconds) on first use; counting
        never runs under ``torch.compile``."""
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = MAC_FORMULAS.get(func.overloadpacket)
        if formula is not None:
            macs = int(formula(args, kwargs, out))
            self.by_module[self.stack[-1]] += macs
            self.by_op[f"aten.{func.overloadpacket.__name__}"] += macs
        return out


def _push_pop_hooks(model: nn.Module, stack: list[str]) -> list[Any]:
    """Forward hooks that keep ``stack`` equal to the chain of running module names."""
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def push(_mod: nn.Module, _args: Any, name: str = name) -> None:
            stack.append(name)

        def pop(_mod: nn.Module, _args: Any, _out: Any) -> None:
            stack.pop()

        handles.append(module.register_forward_pre_hook(push))
        handles.append(module.register_forward_hook(pop, always_call=True))
    return handles


def mac_profile(model: nn.Module, example_inputs: Inputs) -> MacProfile:
    """Count MACs of one inference forward pass, per module and per operator.

    The model runs in eval mode under ``no_grad`` (training flags are restored after), so
    BatchNorm statistics are untouched. Shapes come from ``example_inputs``: the count
    scales with their batch size.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    stack = [""]
    handles = _push_pop_hooks(model, stack)
    mode = _MacMode(stack)
    try:
        with inference_mode_of(model), mode:
            call_model(model, example_inputs)
    finally:
        for handle in handles:
            handle.remove()
    by_module = {k: v for k, v in mode.by_module.items() if v}
    return MacProfile(sum(by_module.values()), by_module, dict(mode.by_op))


def count_macs(model: nn.Module, example_inputs: Inputs) -> int:
    """Multiply-accumulates of one inference forward pass on ``example_inputs``.

    See the module docstring for what counts; ``FLOPs ≈ 2 · count_macs``.
    """
    return mac_profile(model, example_inputs).total


def macs_by_module(model: nn.Module, example_inputs: Inputs) -> dict[str, int]:
    """MACs executed directly by each named module (see :class:`MacProfile`)."""
    return mac_profile(model, example_inputs).by_module


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements; a parameter shared by several modules counts once."""
    params = model.parameters() if isinstance(model, nn.Module) else None
    if params is None:
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in params if p.requires_grad or not trainable_only)


def params_by_module(model: nn.Module) -> dict[str, int]:
    """Parameter elements owned directly (``recurse=False``) by each named module."""
    return {
        name: n
        for name, module in model.named_modules()
        if (n := sum(p.numel() for p in module.parameters(recurse=False)))
    }


def model_bytes(model: nn.Module, include_buffers: bool = True) -> int:
    """Bytes of the model's tensors: ``Σ numel · element_size`` over unique parameters
    (and buffers, e.g. BatchNorm statistics) — what a saved state dict weighs, roughly."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    tensors = list(model.parameters()) + (list(model.buffers()) if include_buffers else [])
    unique = {id(t): t for t in tensors}
    return sum(t.numel() * t.element_size() for t in unique.values())
