"""The layers a latency model times: what ran, at which input shape, rebuilt at any width.

One forward pass with hooks records every Conv1d/2d/3d and Linear module that actually
ran (its input shape and output size), and the two projections of every
``nn.MultiheadAttention`` that ran (they are called functionally, not as modules).
:func:`rebuild` makes a fresh module of the same kind at other channel widths, so that
its latency can be timed alone on the target device. Kinds live in a registry
(``LAYER_KINDS``): add one with :func:`register_kind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.inputs import call_model, inference_mode_of


@dataclass(frozen=True)
class LayerSpec:
    """A timed layer as it ran in the dense model.

    ``weight`` is the fully qualified weight name (how groups refer to it); ``in_shape``
    the input shape at the timing batch size; ``attrs`` the constructor arguments that are
    not widths; ``n_in`` / ``n_out`` the dense widths; ``out_numel`` the output elements.
    """

    name: str
    kind: str
    weight: str
    in_shape: tuple[int, ...]
    attrs: tuple[tuple[str, Any], ...]
    n_in: int
    n_out: int
    out_numel: int
    depthwise: bool = False

    def key(self, cin: int, cout: int) -> str:
        """Cache key of this layer at widths ``(cin, cout)``; equal layers share entries."""
        shape = list(self.in_shape)
        shape[CHANNEL_DIM[self.kind]] = cin
        return f"{self.kind}|{shape}|{dict(self.attrs)}|{cout}"


@dataclass
class LayerKind:
    """How to describe and rebuild one module type."""

    types: tuple[type, ...]
    attrs: Callable[[nn.Module], dict[str, Any]]
    build: Callable[[LayerSpec, int, int], nn.Module]
    channel_dim: int
    depthwise: Callable[[nn.Module], bool] = field(default=lambda m: False)


def _conv_attrs(m: nn.Module) -> dict[str, Any]:
    return {"kernel_size": tuple(m.kernel_size), "stride": tuple(m.stride),
            "padding": m.padding if isinstance(m.padding, str) else tuple(m.padding),
            "dilation": tuple(m.dilation), "groups": m.groups, "bias": m.bias is not None,
            "padding_mode": m.padding_mode}


def _conv_build(spec: LayerSpec, cin: int, cout: int) -> nn.Module:
    attrs = dict(spec.attrs)
    if spec.depthwise:
        attrs["groups"] = cout
    cls = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}[len(spec.in_shape)]
    return cls(cin, cout, **attrs)


def _is_depthwise(m: nn.Module) -> bool:
    return m.groups > 1 and m.groups == m.in_channels == m.out_channels


LAYER_KINDS: dict[str, LayerKind] = {
    "conv": LayerKind((nn.Conv1d, nn.Conv2d, nn.Conv3d), _conv_attrs, _conv_build, 1,
                      _is_depthwise),
    "linear": LayerKind((nn.Linear,), lambda m: {"bias": m.bias is not None},
                        lambda s, cin, cout: nn.Linear(cin, cout, **dict(s.attrs)), -1),
}
CHANNEL_DIM = {name: kind.channel_dim for name, kind in LAYER_KINDS.items()}


def register_kind(name: str, kind: LayerKind) -> None:
    """Add a module kind to time (e.g. a custom fused conv)."""
    LAYER_KINDS[name] = kind
    CHANNEL_DIM[name] = kind.channel_dim


def kind_of(module: nn.Module) -> str | None:
    """Registered kind name of ``module`` (exact or subclass match), else None."""
    for name, kind in LAYER_KINDS.items():
        if isinstance(module, kind.types):
            return name
    return None


def profile_layers(model: nn.Module, inputs: Any) -> list[LayerSpec]:
    """Every registered-kind module that ran on ``inputs``, in execution order (first call)."""
    found: dict[str, LayerSpec] = {}
    handles = []

    def hook(module: nn.Module, args: tuple, out: Any, name: str, kind: str) -> None:
        if name in found or not args or not isinstance(args[0], torch.Tensor) \
                or not isinstance(out, torch.Tensor):
            return
        w = module.weight
        dw = LAYER_KINDS[kind].depthwise(module)
        n_in = module.in_channels if kind == "conv" else w.shape[1]
        found[name] = LayerSpec(name, kind, f"{name}.weight" if name else "weight",
                                tuple(args[0].shape), tuple(LAYER_KINDS[kind].attrs(module)
                                                            .items()),
                                int(n_in), int(w.shape[0]), int(out.numel()), dw)

    def mha_hook(module: nn.Module, args: tuple, kwargs: dict, out: Any, name: str) -> None:
        query = args[0] if args else kwargs.get("query")
        if isinstance(query, torch.Tensor) and module.in_proj_weight is not None:
            found.update({s.name: s for s in _mha_layers(module, name, tuple(query.shape))
                          if s.name not in found})

    for name, module in model.named_modules():
        kind = kind_of(module)
        if kind is not None and isinstance(getattr(module, "weight", None), torch.Tensor):
            handles.append(module.register_forward_hook(
                lambda m, a, o, n=name, k=kind: hook(m, a, o, n, k)))
        elif isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_hook(
                lambda m, a, kw, o, n=name: mha_hook(m, a, kw, o, n), with_kwargs=True))
    try:
        with inference_mode_of(model):
            call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return list(found.values())


def _mha_layers(module: nn.MultiheadAttention, name: str,
                query_shape: tuple[int, ...]) -> list[LayerSpec]:
    """The two projections of an ``nn.MultiheadAttention`` as linear layers.

    Its packed input projection (``in_proj_weight``, ``3E × E``) and ``out_proj`` run
    inside ``F.multi_head_attention_forward``, never as module calls, so the hooks above
    cannot see them; without them a ViT's attention blocks (half its time) would sit in
    the latency model's unexplained rest. The attention product itself stays in the rest.
    """
    prefix = f"{name}." if name else ""
    tokens = query_shape[:-1]
    e = module.embed_dim
    n_tok = 1
    for d in tokens:
        n_tok *= d
    w_in, w_out = module.in_proj_weight, module.out_proj.weight
    return [
        LayerSpec(f"{prefix}in_proj", "linear", f"{prefix}in_proj_weight", query_shape,
                  (("bias", module.in_proj_bias is not None),), int(w_in.shape[1]),
                  int(w_in.shape[0]), n_tok * int(w_in.shape[0])),
        LayerSpec(f"{prefix}out_proj", "linear", f"{prefix}out_proj.weight",
                  (*tokens, int(w_out.shape[1])),
                  (("bias", module.out_proj.bias is not None),), int(w_out.shape[1]),
                  int(w_out.shape[0]), n_tok * e),
    ]


def rebuild(spec: LayerSpec, cin: int, cout: int) -> tuple[nn.Module, torch.Tensor]:
    """A fresh module like ``spec`` at widths ``(cin, cout)`` and a random input for it."""
    if min(cin, cout) < 1:
        raise ValueError(f"layer {spec.name!r}: widths must be >= 1, got ({cin}, {cout})")
    module = LAYER_KINDS[spec.kind].build(spec, cin, cout).eval()
    shape = list(spec.in_shape)
    shape[CHANNEL_DIM[spec.kind]] = cin
    return module, torch.randn(shape)
