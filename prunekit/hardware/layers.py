"""The layers a latency model times: what ran, at which input shape, rebuilt at any width.

One forward pass with hooks records every Conv1d/2d/3d and Linear module that actually
ran (its input shape and output size). :func:`rebuild` makes a fresh module of the same
kind at other channel widths, so that its latency can be timed alone on the target
device. Kinds live in a registry (``LAYER_KINDS``): add one with :func:`register_kind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.measure._inputs import call_model, inference_mode_of


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

    for name, module in model.named_modules():
        kind = kind_of(module)
        if kind is not None and isinstance(getattr(module, "weight", None), torch.Tensor):
            handles.append(module.register_forward_hook(
                lambda m, a, o, n=name, k=kind: hook(m, a, o, n, k)))
    try:
        with inference_mode_of(model):
            call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return list(found.values())


def rebuild(spec: LayerSpec, cin: int, cout: int) -> tuple[nn.Module, torch.Tensor]:
    """A fresh module like ``spec`` at widths ``(cin, cout)`` and a random input for it."""
    if min(cin, cout) < 1:
        raise ValueError(f"layer {spec.name!r}: widths must be >= 1, got ({cin}, {cout})")
    module = LAYER_KINDS[spec.kind].build(spec, cin, cout).eval()
    shape = list(spec.in_shape)
    shape[CHANNEL_DIM[spec.kind]] = cin
    return module, torch.randn(shape)
