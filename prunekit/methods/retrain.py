"""Prune-and-retrain rounds with learning-rate rewinding (Renda et al., ICLR 2020).

A *round* takes a (possibly already sparse) model to a target sparsity and retrains it
for a fixed budget of epochs. Renda et al. found that *how* the retraining phase uses its
learning rate matters more than which weights are kept: fine-tuning at the small final
learning rate recovers least, while **rewinding the learning-rate schedule** (restarting
it high and annealing it again, with the weights kept) recovers most. Here the schedule
of every round is a cosine from ``lr_max`` to ``lr_min`` over the round's steps ``T``,

    lr(t) = lr_min + ½ (lr_max − lr_min) (1 + cos(π (t − 1) / (T − 1))),   t = 1..T,

optionally after a linear warm-up, restarted at each round (warm restarts, Loshchilov &
Hutter 2017). The target is reached at the first step (one-shot, the whole budget is
recovery) or by a cubic ramp over the first ``prune_fraction`` of the round (Zhu & Gupta
2017), with LAMP or plain magnitude scores, and optional distillation from a teacher.

**Weight averaging** (stochastic weight averaging, Izmailov et al. 2018): over the last
``average_fraction`` of the round the parameters are averaged every ``average_every``
steps, ``w̄ = (1/K) Σ_k w_{t_k}``, and the round ends on ``w̄`` (masked: the mask is fixed
during the window, so ``w̄ ⊙ m`` has exactly the round's sparsity). At a constant learning
rate the iterates bounce around a flat basin; their mean sits nearer its centre, which
generalizes better than the last iterate (and removes the last iterate's noise).
Models with BatchNorm need their running statistics recomputed on ``w̄``
(``torch.optim.swa_utils.update_bn``); pass ``bn_data`` for that.

Measured (LeNet-300-100, Fashion-MNIST, 3 epochs per level, docs/methods.md): the cosine
lost to a constant rate at every level; what beat ``torch.nn.utils.prune`` at every level
from 10× to 100× was a constant retraining rate 2× the training one, a cubic ramp over
the first 30 % of each round and averaging over its last half: the defaults of
:class:`RetrainConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from prunekit.methods.magnitude import SCOPES, magnitude_prune
from prunekit.methods.masks import prunable_weights, sparsity_of
from prunekit.methods.recovery import FitConfig, fit, make_optimizer
from prunekit.methods.schedules import gradual

Data = tuple[torch.Tensor, torch.Tensor]
Hook = Callable[[int, nn.Module], None]


class CosineLR:
    """``on_step`` callback of :func:`~prunekit.methods.fit` that sets every param group's
    learning rate for the *next* step: linear warm-up over ``warmup`` steps to ``lr_max``,
    then the cosine above down to ``lr_min`` at step ``total``; ``lr_min`` after it.

    Call :meth:`start` before the first step (it sets the step-1 rate).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total: int, lr_max: float,
                 lr_min: float = 0.0, warmup: int = 0) -> None:
        if total < 1 or warmup < 0 or warmup >= total:
            raise ValueError(f"CosineLR: need total >= 1 and 0 <= warmup < total, got "
                             f"total={total}, warmup={warmup}")
        if not 0.0 <= lr_min <= lr_max:
            raise ValueError(f"CosineLR: need 0 <= lr_min <= lr_max, got {lr_min}, {lr_max}")
        self.optimizer, self.total, self.warmup = optimizer, total, warmup
        self.lr_max, self.lr_min = lr_max, lr_min

    def lr_at(self, step: int) -> float:
        """The rate used by optimizer step ``step`` (1-based)."""
        if step <= self.warmup:
            return self.lr_max * step / (self.warmup + 1)
        t = min(step - self.warmup, self.total - self.warmup)
        frac = (t - 1) / max(self.total - self.warmup - 1, 1)
        return self.lr_min + 0.5 * (self.lr_max - self.lr_min) * (1 + math.cos(math.pi * frac))

    def _set(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def start(self) -> None:
        self._set(self.lr_at(1))

    def __call__(self, step: int, model: nn.Module) -> None:
        self._set(self.lr_at(step + 1))


class WeightAverage:
    """``on_step`` callback: running mean of every parameter at the steps
    ``t ≥ start`` with ``(t − start) % every == 0``; :meth:`apply` writes the mean into
    the parameters (in place, parameter objects kept, so masks stay on)."""

    def __init__(self, model: nn.Module, start: int, every: int = 1) -> None:
        if start < 1 or every < 1:
            raise ValueError(f"WeightAverage: need start >= 1 and every >= 1, got {start}, "
                             f"{every}")
        self.start, self.every, self.count = start, every, 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.mean = [torch.zeros_like(p, dtype=torch.float64) for p in self.params]

    @torch.no_grad()
    def __call__(self, step: int, model: nn.Module) -> None:
        if step < self.start or (step - self.start) % self.every:
            return
        self.count += 1
        for avg, p in zip(self.mean, self.params):
            avg.add_(p.detach().double() - avg, alpha=1.0 / self.count)

    @torch.no_grad()
    def apply(self) -> int:
        """Copy the mean into the parameters; returns the number of averaged iterates."""
        if self.count:
            for avg, p in zip(self.mean, self.params):
                p.copy_(avg.to(p.dtype))
        return self.count


def chain(*hooks: Hook | None) -> Hook:
    """One ``on_step`` callback running ``hooks`` in order (``None`` entries skipped)."""
    live = [h for h in hooks if h is not None]

    def run(step: int, model: nn.Module) -> None:
        for hook in live:
            hook(step, model)
    return run


@dataclass(frozen=True)
class RetrainConfig:
    """How one prune-and-retrain round runs (on top of a :class:`FitConfig`).

    ``scope``: the magnitude score (``"global"``, ``"layer"`` or ``"lamp"``).
    ``lr_schedule``: ``"cosine"`` (rewound and annealed in every round) or ``"constant"``
    (``FitConfig.lr`` throughout, plain fine-tuning). ``lr_min`` and ``warmup_fraction``
    (of the round's steps) shape the cosine. ``prune_fraction``: 0 prunes to the target
    at the first step; ``f > 0`` ramps the sparsity cubically over the first ``f`` of the
    round, pruning ``prune_every`` steps. ``average_fraction`` > 0: the round ends on
    the mean of the parameters over its last ``average_fraction`` (:class:`WeightAverage`),
    sampled every ``average_every`` steps. The defaults are the recipe that measured best
    (module docstring); the learning rate itself is ``FitConfig.lr``.
    """

    scope: str = "global"
    lr_schedule: str = "constant"
    lr_min: float = 0.0
    warmup_fraction: float = 0.0
    prune_fraction: float = 0.3
    prune_every: int = 20
    average_fraction: float = 0.5
    average_every: int = 1

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"RetrainConfig.scope must be one of {SCOPES}, got {self.scope!r}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError("RetrainConfig.lr_schedule must be 'cosine' or 'constant', "
                             f"got {self.lr_schedule!r}")
        if not 0.0 <= self.prune_fraction < 1.0 or not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError("RetrainConfig.prune_fraction and warmup_fraction must be in "
                             "[0, 1)")
        if not 0.0 <= self.average_fraction <= 1.0 or self.average_every < 1:
            raise ValueError("RetrainConfig.average_fraction must be in [0, 1] and "
                             "average_every >= 1")
        if self.prune_every < 1 or self.lr_min < 0:
            raise ValueError("RetrainConfig.prune_every must be >= 1 and lr_min >= 0")


def _steps(n: int, config: FitConfig) -> int:
    return config.epochs * math.ceil(n / config.batch_size)


def prune_retrain(model: nn.Module, train: Data, sparsity: float, config: FitConfig,
                  retrain: RetrainConfig | None = None, teacher: nn.Module | None = None,
                  names: Sequence[str] | None = None, bn_data: torch.Tensor | None = None
                  ) -> float:
    """One round: prune ``model`` (in place) to ``sparsity`` and retrain for
    ``config.epochs`` with the round's learning-rate schedule (distilling from ``teacher``
    when ``config.distill_alpha > 0``). Returns the final sparsity, exactly ``sparsity``
    over ``names`` (masks only shrink, so it must not be below the current one).
    ``bn_data``: inputs to recompute BatchNorm statistics after weight averaging.

    Raises ValueError, with the model untouched, on a bad ``sparsity``.
    """
    retrain = retrain or RetrainConfig()
    names = list(names) if names is not None else prunable_weights(model)
    current = sparsity_of(model, names)  # also checks the names, before any change
    if not current - 1e-6 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [current sparsity {current:.4f}, 1), got "
                         f"{sparsity!r}")
    config = replace(config, checkpoint=None)
    optimizer = make_optimizer(model, config)
    total = max(_steps(len(train[1]), config), 1)
    lr_hook = None
    if retrain.lr_schedule == "cosine":
        lr_hook = CosineLR(optimizer, total, config.lr, retrain.lr_min,
                           warmup=int(retrain.warmup_fraction * total))
        lr_hook.start()
    prune_hook = None
    ramp_end = int(retrain.prune_fraction * total)
    if ramp_end >= 2:
        every = min(retrain.prune_every, ramp_end)
        schedule = gradual(float(sparsity), 0, ramp_end, every, initial=current)
        reached = [current]

        def prune_hook(step: int, m: nn.Module) -> None:
            target = schedule(step)
            if target > reached[0] + 1e-9:
                magnitude_prune(m, target, retrain.scope, names)
                reached[0] = target
    else:
        magnitude_prune(model, float(sparsity), retrain.scope, names)
    average = None
    if retrain.average_fraction > 0:
        start = max(total - int(retrain.average_fraction * total) + 1, ramp_end + 1, 1)
        average = WeightAverage(model, start, retrain.average_every)
    fit(model, train, config, optimizer=optimizer, teacher=teacher,
        on_step=chain(prune_hook, lr_hook, average))
    if average is not None and average.apply() and bn_data is not None:
        _update_bn(model, bn_data)
    magnitude_prune(model, float(sparsity), retrain.scope, names)  # land exactly on it
    return sparsity_of(model, names)


@torch.no_grad()
def _update_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> None:
    """Recompute BatchNorm running statistics on ``x`` (for the averaged weights)."""
    from torch.optim.swa_utils import update_bn

    update_bn([(xb,) for xb in torch.split(x, batch_size)], model)
