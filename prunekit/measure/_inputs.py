"""How measurement functions feed ``example_inputs`` to a model, without side effects.

Convention shared by every function in :mod:`prunekit.measure`: a tensor is passed as the
single positional argument, a tuple or list is unpacked positionally, a dict is passed as
keyword arguments (Hugging Face style).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from prunekit.inputs import call_model

__all__ = ["Inputs", "call_model", "inference_mode_of"]  # call_model's home: prunekit.inputs

Inputs = torch.Tensor | tuple | list | Mapping[str, Any]


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
