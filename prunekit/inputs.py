"""How prunekit feeds example inputs to a model and finds the tensors in what it returns.

One convention everywhere: a tensor is passed as the single positional argument
(``model(x)``), a tuple or list is unpacked positionally (``model(*x)``), a mapping is
passed as keyword arguments (``model(**x)``, Hugging Face style). Outputs are walked
through nested tuples, lists and mappings (a Hugging Face ``ModelOutput`` is a mapping).
This module imports nothing but torch, so every layer can use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["Inputs", "call_model", "first_tensor", "inference_mode_of", "iter_tensors"]

Inputs = torch.Tensor | tuple | list | Mapping[str, Any]


def iter_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Tensors inside nested tuples, lists and mappings (HF ModelOutput included)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from iter_tensors(item)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from iter_tensors(item)


def first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor in a (possibly nested) output, depth first; None if there is none."""
    if hasattr(obj, "to_tuple") and not isinstance(obj, (tuple, list, torch.Tensor)):
        obj = obj.to_tuple()  # Hugging Face ModelOutput
    return next(iter_tensors(obj), None)


def call_model(model: nn.Module, example_inputs: Any) -> Any:
    """Run ``model`` on a tensor (``model(x)``), tuple/list (``model(*x)``) or mapping
    (``model(**x)``) — the convention every prunekit function follows."""
    if isinstance(example_inputs, torch.Tensor):
        return model(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return model(*example_inputs)
    if isinstance(example_inputs, Mapping):
        return model(**example_inputs)
    raise TypeError("example_inputs must be a Tensor, a tuple/list of arguments or a dict "
                    f"of keyword arguments, got {type(example_inputs).__name__}")


@contextlib.contextmanager
def inference_mode_of(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode under ``no_grad`` and restore every module's mode after.

    Measuring must not mutate the user's model: a training-mode forward would update
    BatchNorm running statistics, so we switch to eval and restore the per-module flags.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for module, mode in modes:
            module.training = mode
