"""The data a criterion may use, and the caches that make data-driven criteria cheap.

Data-driven criteria (Taylor, Fisher/OBD, activation statistics) need forward and
backward passes over calibration batches. They run those passes **once per context**
(gradients once, activations once) for all groups, and cache the per-tensor statistics
in the context; scoring one group is then a cheap reduction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import torch
from torch import nn

from prunekit.inputs import call_model, iter_tensors

__all__ = ["ImportanceContext", "batch_loss", "call_model"]


@dataclass
class ImportanceContext:
    """Calibration data and caches shared by all groups scored in one pruning step.

    Parameters
    ----------
    example_inputs
        Model inputs used when ``batches`` is None: a tensor (``model(x)``), a tuple or
        list (``model(*x)``) or a dict (``model(**x)``).
    batches
        Optional iterable of calibration batches. Without ``loss_fn`` each batch is model
        inputs like ``example_inputs``; with ``loss_fn`` each batch is a pair
        ``(inputs, target)``. Only the first ``n_batches`` are used (read once, kept).
    loss_fn
        ``loss_fn(output, target) -> scalar`` for gradient criteria. Without it, the
        self-supervised loss ``mean(output²)`` (summed over floating output tensors) is
        used, which ranks channels by how much they move the output.
    n_batches
        Maximum number of batches taken from ``batches``.
    seed
        Seed of the ``random`` criterion.
    progress
        Show a progress bar during calibration passes.

    Attributes
    ----------
    notes : list of str
        What criteria decided on the user's behalf (fallbacks, uninformative scores).
    """

    example_inputs: Any = None
    batches: Iterable[Any] | None = None
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None
    n_batches: int = 8
    seed: int = 0
    progress: bool = False
    notes: list[str] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.n_batches, int) or self.n_batches < 1:
            raise ValueError(f"n_batches must be a positive int, got {self.n_batches!r}")
        if self.loss_fn is not None and not callable(self.loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(self.loss_fn).__name__}")

    def clear(self) -> None:
        """Drop cached statistics (call after changing weights through ``.data``).

        The calibration batches read so far are kept (``batches`` may be a one-shot
        iterator).
        """
        for key in [k for k in self._cache if k != "batches"]:
            del self._cache[key]

    def note(self, message: str) -> None:
        """Record ``message`` once in :attr:`notes`."""
        if message not in self.notes:
            self.notes.append(message)

    def calibration_batches(self, criterion: str) -> list[tuple[Any, Any]]:
        """The calibration batches as ``(inputs, target)`` pairs (target None without loss).

        Raises
        ------
        ValueError
            If the context has neither batches nor example inputs, if ``loss_fn`` is given
            without ``batches`` (there are no targets), or a batch is not a pair.
        """
        if "batches" not in self._cache:
            self._cache["batches"] = self._read_batches(criterion)
        return self._cache["batches"]

    def cached(self, key: str, model: nn.Module, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per (key, model state); later calls return the cached value.

        The state signature is the model's identity and every parameter's name, shape and
        in-place version counter, so surgery or an optimizer step invalidates the cache.
        """
        signature = _state_signature(model)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == signature:
            return hit[1]
        value = compute()
        self._cache[key] = (signature, value)
        return value

    def _read_batches(self, criterion: str) -> list[tuple[Any, Any]]:
        if self.batches is None:
            if self.example_inputs is None:
                raise ValueError(
                    f"importance {criterion!r} needs data: give ImportanceContext "
                    "example_inputs or batches"
                )
            if self.loss_fn is not None:
                raise ValueError(
                    "ImportanceContext.loss_fn needs batches of (inputs, target) pairs"
                )
            return [(self.example_inputs, None)]
        batches = list(islice(self.batches, self.n_batches))
        if not batches:
            raise ValueError("ImportanceContext.batches is empty")
        if self.loss_fn is None:
            return [(b, None) for b in batches]
        return [_as_pair(b, i) for i, b in enumerate(batches)]


def batch_loss(ctx: ImportanceContext, output: Any, target: Any) -> torch.Tensor:
    """``loss_fn(output, target)``, or the self-supervised ``Σ_t mean(t²)`` over outputs."""
    if ctx.loss_fn is not None:
        return ctx.loss_fn(output, target)
    leaves = [t for t in iter_tensors(output) if t.is_floating_point() and t.requires_grad]
    if not leaves:
        raise ValueError("model output has no floating tensor that depends on the parameters")
    return sum(t.float().pow(2).mean() for t in leaves)


def _as_pair(batch: Any, i: int) -> tuple[Any, Any]:
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(f"batch {i}: with loss_fn, each batch must be an (inputs, target) pair")


def _state_signature(model: nn.Module) -> tuple:
    params = tuple(
        (name, tuple(p.shape), p._version) for name, p in model.named_parameters()
    )
    return id(model), params
