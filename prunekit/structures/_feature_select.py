"""Helpers of the ``input_feature`` structure: the first layer, the selector, the picture.

:class:`FeatureSelect` is what a pruned model holds in place of its first layer: it picks
the kept input columns (``x.index_select(dim, index)``) and runs the narrowed layer, so
users keep feeding full inputs. :func:`kept_pixels_image` draws which pixels survived.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prunekit.graph.oplog import first_tensor
from prunekit.inputs import call_model, inference_mode_of

FIRST_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class FeatureSelect(nn.Module):
    """``layer(x.index_select(dim, index))``: a narrowed first layer fed full inputs.

    ``index`` (a buffer, saved in the state_dict) lists the kept input columns of the
    original layer; ``dim`` is the axis they index (-1 for ``nn.Linear``, 1 for convs).
    """

    def __init__(self, layer: nn.Module, index: torch.Tensor, dim: int) -> None:
        super().__init__()
        self.layer = layer
        self.dim = int(dim)
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.long).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.index_select(self.dim, self.index.to(x.device)))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kept={self.index.numel()}"


@dataclass(frozen=True)
class InputLayer:
    """The layer whose input columns are the features.

    ``name``: qualified module name; ``n_columns``: its input width (``in_features`` or
    ``in_channels``); ``dim``: the input axis the columns index; ``input_shape``: the
    per-sample shape of the model's first input (to map columns to pixels).
    """

    name: str
    n_columns: int
    dim: int
    input_shape: tuple[int, ...]


def _check_layer(name: str, module: nn.Module) -> None:
    if not isinstance(module, FIRST_LAYER_TYPES):
        raise TypeError(f"layer {name!r} is a {type(module).__name__}; input features are "
                        "read from an nn.Linear or nn.Conv1d/2d/3d")
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups != 1:
        raise ValueError(f"layer {name!r} is a grouped convolution (groups={module.groups}); "
                         "its input channels cannot be selected one by one")


def find_input_layer(model: nn.Module, example_inputs: Any,
                     layer: str | None = None) -> InputLayer:
    """The first ``nn.Linear`` / ``nn.Conv*`` called in a forward pass (or ``layer``).

    One hooked forward pass in eval mode under ``no_grad``; the model is not changed.
    ValueError when no such layer runs or ``layer`` is not a module of the model.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    if layer is not None:
        if layer not in modules:
            raise ValueError(f"layer: no module named {layer!r} in the model")
        _check_layer(layer, modules[layer])
    order: list[str] = []
    handles = [m.register_forward_pre_hook(lambda _m, _a, n=n: order.append(n))
               for n, m in modules.items() if isinstance(m, FIRST_LAYER_TYPES)]
    try:
        with inference_mode_of(model):
            call_model(model, example_inputs)
    finally:
        for h in handles:
            h.remove()
    name = layer if layer is not None else (order[0] if order else None)
    if name is None:
        raise ValueError("input_feature: the model runs no nn.Linear or nn.Conv1d/2d/3d, so "
                         "it has no input layer whose columns could be removed")
    if isinstance(modules[name], FeatureSelect) or name.endswith(".layer") and isinstance(
            modules.get(name.rpartition(".")[0]), FeatureSelect):
        raise ValueError(f"input_feature: layer {name!r} already selects its input features")
    _check_layer(name, modules[name])
    m = modules[name]
    width = m.in_features if isinstance(m, nn.Linear) else m.in_channels
    first = first_tensor(example_inputs)
    shape = tuple(first.shape[1:]) if first is not None else ()
    return InputLayer(name, int(width), -1 if isinstance(m, nn.Linear) else 1, shape)


def pixel_columns(layer: InputLayer, unit: str) -> list[list[int]]:
    """``columns[f]``: the input columns that feature ``f`` owns.

    ``unit="column"``: one column each. ``unit="pixel"``: an ``nn.Linear`` reading a
    flattened ``C×H×W`` image owns, per pixel ``p``, the columns ``c·H·W + p``.
    """
    if unit == "column":
        return [[c] for c in range(layer.n_columns)]
    if unit != "pixel":
        raise ValueError(f"unit must be 'column' or 'pixel', got {unit!r}")
    shape = layer.input_shape
    if layer.dim != -1 or len(shape) not in (2, 3) or int(np.prod(shape)) != layer.n_columns:
        raise ValueError(f"unit='pixel' needs an nn.Linear reading a flattened (C,)H,W image; "
                         f"layer {layer.name!r} reads {layer.n_columns} columns from inputs "
                         f"of shape {shape}")
    channels = shape[0] if len(shape) == 3 else 1
    hw = layer.n_columns // channels
    return [[c * hw + p for c in range(channels)] for p in range(hw)]


def kept_pixels_image(kept: Any, shape: tuple[int, int], path: str | Path | None = None,
                      background: Any = None, title: str | None = None) -> np.ndarray:
    """A ``H×W`` mask (1 = kept) of pixel indices ``kept``; also a PNG at ``path``.

    ``background`` (an ``H×W`` image, e.g. the mean training image) is drawn in grey under
    the kept pixels, so the picture shows *where* the model still looks.
    """
    h, w = int(shape[0]), int(shape[1])
    idx = np.asarray(kept, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= h * w):
        raise ValueError(f"kept: pixel indices must lie in [0, {h * w})")
    mask = np.zeros(h * w, dtype=np.float64)
    mask[idx] = 1.0
    mask = mask.reshape(h, w)
    if path is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(3.2, 3.4))
        if background is not None:
            ax.imshow(np.asarray(background, dtype=np.float64).reshape(h, w), cmap="gray")
        ax.imshow(np.ma.masked_where(mask == 0, mask), cmap="autumn", alpha=0.75, vmin=0,
                  vmax=1)
        ax.set_title(title or f"kept pixels: {idx.size}/{h * w}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return mask
