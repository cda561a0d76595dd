"""Run calibration batches through a model and accumulate output moments per module call.

Forward hooks on the requested modules turn each output tensor into a matrix with the
channel dim last (``rows = batch × positions``) and add it to a :class:`ChannelMoments`,
one per (module, dim, call): a module called several times per forward (a shared ReLU)
keeps its calls apart, ordered by ``seq``, the position of the call among all recorded
calls of the first batch. The model is left as it was (eval mode inside, training flags,
``requires_grad`` and hooks restored by :func:`prunekit.importance.calibration.preserved_state`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import torch
from torch import nn

from prunekit.diagnose.moments import ChannelMoments


@dataclass
class Recorded:
    """Moments of one call of a module, channels along ``dim``, and its call order."""

    moments: ChannelMoments
    seq: int


@dataclass
class Collection:
    """``{(module, dim): [Recorded per call]}`` plus the number of batches run."""

    calls: dict[tuple[str, int], list[Recorded]] = field(default_factory=dict)
    batches: int = 0

    def first(self, name: str, dim: int) -> Recorded | None:
        recs = self.calls.get((name, dim))
        return recs[0] if recs else None


def default_inputs(batch: Any) -> Any:
    """The model inputs of a calibration batch.

    A 2-sequence whose second item is an integer tensor is a labeled ``(inputs, target)``
    pair and gives its first item; anything else is passed to the model as it is (a
    tensor: ``model(x)``, a tuple/list: ``model(*x)``, a dict: ``model(**x)``).
    """
    if (isinstance(batch, tuple | list) and len(batch) == 2
            and isinstance(batch[1], torch.Tensor) and not batch[1].is_floating_point()):
        return batch[0]
    return batch


def read_batches(calibration: Any, max_batches: int | None,
                 inputs_of: Callable[[Any], Any] | None) -> list[Any]:
    """Model inputs of the calibration data: a tensor (one batch) or an iterable of batches.

    Raises ValueError naming ``calibration`` when there is no batch.
    """
    if calibration is None:
        raise ValueError("calibration: no calibration data given (a tensor or batches)")
    if max_batches is not None and (not isinstance(max_batches, int) or max_batches < 1):
        raise ValueError(f"max_batches must be a positive int, got {max_batches!r}")
    if isinstance(calibration, torch.Tensor | Mapping):
        batches = [calibration]
    elif isinstance(calibration, Iterable):
        batches = list(islice(calibration, max_batches))
    else:
        raise TypeError(f"calibration must be a tensor or an iterable of batches, got "
                        f"{type(calibration).__name__}")
    if isinstance(calibration, torch.Tensor) and calibration.numel() == 0:
        batches = []
    if not batches:
        raise ValueError("calibration: no batches (the calibration data is empty)")
    pick = inputs_of or default_inputs
    return [pick(b) for b in batches]


def collect(model: nn.Module, batches: list[Any], wanted: Iterable[tuple[str, int]],
            max_channels: int = 2048, progress: bool = False) -> Collection:
    """Output moments of every ``(module name, dim)`` in ``wanted`` over ``batches``."""
    from prunekit.importance.calibration import preserved_state
    from prunekit.importance.context import call_model

    modules = dict(model.named_modules())
    dims: dict[str, set[int]] = {}
    for name, dim in wanted:
        if name in modules:
            dims.setdefault(name, set()).add(dim)
    out = Collection()
    state = {"seq": 0, "calls": {}}
    with preserved_state(model, need_grad=False) as handles, torch.no_grad():
        for name, want in dims.items():
            hook = _hook(name, sorted(want), out, state, max_channels)
            handles.append(modules[name].register_forward_hook(hook))
        for inputs in _bar(batches, progress):
            state["seq"], state["calls"] = 0, {}
            call_model(model, inputs)
            out.batches += 1
    return out


def _hook(name: str, dims: list[int], out: Collection, state: dict, max_channels: int):
    def record(module: nn.Module, args: tuple, output: Any) -> None:
        call = state["calls"].get(name, 0)
        state["calls"][name] = call + 1
        state["seq"] += 1
        a = output[0] if isinstance(output, tuple | list) and output else output
        if not (isinstance(a, torch.Tensor) and a.is_floating_point() and a.dim() >= 1):
            return
        for dim in dims:
            if not -a.dim() <= dim < a.dim() or a.shape[dim] > max_channels:
                continue
            mat = a.detach().movedim(dim, -1).reshape(-1, a.shape[dim])
            recs = out.calls.setdefault((name, dim), [])
            if call >= len(recs):
                recs.append(Recorded(ChannelMoments.empty(a.shape[dim]), state["seq"]))
            if recs[call].moments.channels == a.shape[dim]:
                recs[call].moments.update(mat)

    return record


def _bar(batches: list[Any], enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(batches, desc="diagnose", disable=not enabled, leave=False)
