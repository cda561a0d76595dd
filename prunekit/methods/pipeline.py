"""Compositions: hybrid plans (structured, then unstructured) and the compression pipeline
prune → distill-fine-tune → bake → (optional) dynamic int8."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.methods.magnitude import magnitude_prune
from prunekit.methods.masks import bake, prunable_weights
from prunekit.methods.recovery import FitConfig, evaluate, fit, quantize_int8

Data = tuple[torch.Tensor, torch.Tensor]


def hybrid_prune(model: nn.Module, structured: Callable[[nn.Module], Any], sparsity: float,
                 scope: str = "global", names: Sequence[str] | None = None) -> Any:
    """Structured first (``structured(model)`` removes channels physically, e.g. a
    :meth:`ProximalGroupLasso.finalize` or ``prunekit.prune``), then magnitude masks at
    ``sparsity`` on the weights that remain. Returns what ``structured`` returned."""
    out = structured(model)
    magnitude_prune(model, sparsity, scope, names if names is not None
                    else prunable_weights(model))
    return out


@dataclass
class CompressResult:
    """The pruned fine-tuned float model, its int8 version (or None), and accuracies."""

    model: nn.Module
    quantized: nn.Module | None
    dense_accuracy: float | None
    accuracy: float | None
    quantized_accuracy: float | None


def compress(model: nn.Module, train: Data, prune: Callable[[nn.Module], Any],
             config: FitConfig, test: Data | None = None, distill: bool = True,
             quantize: bool = True) -> CompressResult:
    """One pipeline: keep a frozen dense copy as teacher, ``prune(model)`` in place,
    fine-tune (with distillation when ``distill`` and ``config.distill_alpha > 0``), bake
    masks, then dynamic int8 quantization of the Linear layers when ``quantize``."""
    teacher = copy.deepcopy(model).eval() if distill else None
    dense_acc = evaluate(model, test) if test is not None else None
    prune(model)
    fit(model, train, config, teacher=teacher)
    bake(model)
    q = quantize_int8(model) if quantize else None
    return CompressResult(
        model, q, dense_acc,
        evaluate(model, test) if test is not None else None,
        evaluate(q, test) if q is not None and test is not None else None,
    )
