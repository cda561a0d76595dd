"""Pruning drivers: iterative prune → fine-tune cycles, scheduled (gradual) magnitude
pruning during training, and soft/dynamic pruning in which pruned weights may recover.

Each driver is a short composition of :mod:`~prunekit.methods.magnitude`,
:mod:`~prunekit.methods.schedules` and :func:`~prunekit.methods.recovery.fit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from prunekit.methods.magnitude import magnitude_masks, magnitude_prune
from prunekit.methods.masks import dense_weight, prunable_weights, sparsity_of
from prunekit.methods.recovery import FitConfig, evaluate, fit
from prunekit.methods.schedules import Schedule, iterative

Data = tuple[torch.Tensor, torch.Tensor]


@dataclass
class RoundRecord:
    """One pruning round: the sparsity reached and, when test data is given, the accuracy."""

    sparsity: float
    accuracy: float | None


def iterative_prune(model: nn.Module, train: Data, final: float, rounds: int,
                    config: FitConfig, scope: str = "global", test: Data | None = None,
                    names: Sequence[str] | None = None) -> list[RoundRecord]:
    """Han et al. (2015) cycles: for ``r = 1..R`` prune to ``1 − (1 − s_f)^(r/R)`` by
    magnitude, then fine-tune with ``config``. ``rounds=1`` is one-shot + fine-tune."""
    names = list(names) if names is not None else prunable_weights(model)
    schedule = iterative(final, rounds, every=1)
    history = []
    for r in range(1, rounds + 1):
        magnitude_prune(model, schedule(r), scope, names)
        fit(model, train, replace(config, checkpoint=None))
        acc = evaluate(model, test) if test is not None else None
        history.append(RoundRecord(sparsity_of(model, names), acc))
    return history


class ScheduledMagnitude:
    """``on_step`` callback for :func:`fit`: prune by magnitude whenever the schedule's
    target sparsity rises (gradual pruning, Zhu & Gupta 2017, with a :class:`Cubic`)."""

    def __init__(self, schedule: Schedule, scope: str = "global",
                 names: Sequence[str] | None = None) -> None:
        self.schedule = schedule
        self.scope = scope
        self.names = list(names) if names is not None else None
        self.current = 0.0

    def __call__(self, step: int, model: nn.Module) -> None:
        target = self.schedule(step)
        if target > self.current + 1e-12:
            magnitude_prune(model, target, self.scope, self.names)
            self.current = target


def gradual_prune(model: nn.Module, train: Data, schedule: Schedule, config: FitConfig,
                  scope: str = "global", names: Sequence[str] | None = None) -> float:
    """Train with ``config`` while ``schedule`` raises sparsity; returns the final sparsity."""
    hook = ScheduledMagnitude(schedule, scope, names)
    fit(model, train, config, on_step=hook)
    return sparsity_of(model, hook.names)


class SoftMagnitude:
    """Dynamic (soft) pruning: every ``every`` steps, set the smallest weights to zero
    *without* a mask, so gradient steps can bring them back; :meth:`finish` makes the
    last cut permanent (a mask). Follows soft filter pruning (He et al. 2018) at the
    weight level; the target sparsity can follow any schedule."""

    def __init__(self, schedule: Schedule, every: int = 1, scope: str = "global",
                 names: Sequence[str] | None = None) -> None:
        self.schedule = schedule
        self.every = every
        self.scope = scope
        self.names = list(names) if names is not None else None
        self.recovered = 0  # weights zeroed at a soft step and kept at a later one
        self._zeroed: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, step: int, model: nn.Module) -> None:
        if step % self.every:
            return
        masks = magnitude_masks(model, self.schedule(step), self.scope, self.names)
        for name, keep in masks.items():
            if name in self._zeroed:
                self.recovered += int((self._zeroed[name] & keep).sum())
            self._zeroed[name] = ~keep
            w = dense_weight(model, name)
            w.mul_(keep.to(w.dtype))

    def finish(self, model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
        """Final hard cut at ``sparsity``: masks from the current magnitudes."""
        return magnitude_prune(model, sparsity, self.scope, self.names)
