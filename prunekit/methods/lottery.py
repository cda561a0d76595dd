"""Lottery tickets (Frankle & Carbin 2019; rewinding: Frankle et al. 2020).

Iterative magnitude pruning with rewinding: train, prune a fraction of the remaining
weights by global magnitude, reset the surviving weights to their values at training
step ``k`` (``k = 0``: the original initialization) and train again. The *random
reinitialization* control trains the same final mask from a fresh random init; a
winning ticket beats it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from prunekit.methods.magnitude import SCOPES, magnitude_prune
from prunekit.methods.masks import (
    apply_masks,
    clone_model,
    get_masks,
    named_dense_parameters,
    prunable_weights,
    sparsity_of,
    strip_masks,
)
from prunekit.methods.recovery import FitConfig, evaluate, fit
from prunekit.methods.schedules import iterative

Data = tuple[torch.Tensor, torch.Tensor]


@dataclass
class LotteryResult:
    """The ticket (masked model trained from the rewound weights), its masks, the
    per-round sparsity/accuracy, and the random-reinit control's accuracy."""

    model: nn.Module
    masks: dict[str, torch.Tensor]
    rounds: list[dict] = field(default_factory=list)
    ticket_accuracy: float | None = None
    reinit_accuracy: float | None = None
    dense_accuracy: float | None = None


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the dense parameters under their plain names."""
    return {n: p.detach().clone() for n, p in named_dense_parameters(model)}


@torch.no_grad()
def rewind(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` into the dense parameters (masks are kept)."""
    for name, p in named_dense_parameters(model):
        p.copy_(state[name])


def reinitialize(model: nn.Module, seed: int) -> None:
    """Fresh random init of every layer with ``reset_parameters`` (masks are kept)."""
    masks = get_masks(model)
    strip_masks(model)
    torch.manual_seed(seed)
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    apply_masks(model, masks)


def _rewind_point(k: int, holder: dict) -> Callable[[int, nn.Module], None]:
    def hook(step: int, model: nn.Module) -> None:
        if step == k:
            holder["state"] = snapshot(model)
    return hook


def lottery_ticket(model: nn.Module, train: Data, final: float, rounds: int,
                   config: FitConfig, rewind_step: int = 0, test: Data | None = None,
                   names: Sequence[str] | None = None, control: bool = True,
                   control_seed: int = 12345, scope: str = "global") -> LotteryResult:
    """Find a ticket at sparsity ``final`` with ``rounds`` of IMP; ``model`` is changed in
    place (it ends as the trained ticket). With ``control``, a copy with the same mask is
    re-initialized at random and trained the same way.

    Round ``r`` prunes to ``1 − (1 − final)^(r/R)`` (the same fraction of the survivors
    each round, e.g. 20 % for ``final=0.95, rounds=13``) with the magnitude ``scope``
    (``"global"``, ``"layer"`` or ``"lamp"``). ``rewind_step=k > 0`` is late rewinding
    (Frankle et al. 2020): survivors restart from their values after ``k`` optimizer steps
    of the first training run, which keeps tickets trainable at higher sparsity and in
    larger nets than rewinding to the initialization. Every training run uses ``config``
    (the first one, from the initialization, is the dense baseline: its accuracy is
    ``dense_accuracy``).
    """
    if rewind_step < 0:
        raise ValueError(f"rewind_step must be >= 0, got {rewind_step}")
    if rounds < 1 or not 0.0 <= float(final) < 1.0:
        raise ValueError(f"need rounds >= 1 and final in [0, 1), got rounds={rounds}, "
                         f"final={final}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    steps = config.epochs * -(-len(train[1]) // config.batch_size)
    if rewind_step > steps:
        raise ValueError(f"rewind_step={rewind_step} is beyond the {config.epochs}-epoch run "
                         f"({steps} steps)")
    names = list(names) if names is not None else prunable_weights(model)
    config = replace(config, checkpoint=None)
    holder: dict = {"state": snapshot(model)} if rewind_step == 0 else {}
    fit(model, train, config, on_step=_rewind_point(rewind_step, holder))
    if "state" not in holder:  # fewer steps than counted (a DDP shard)
        raise ValueError(f"rewind_step={rewind_step} is beyond the {config.epochs}-epoch run")
    schedule, result = iterative(final, rounds, every=1), LotteryResult(model, {})
    result.dense_accuracy = evaluate(model, test) if test is not None else None
    for r in range(1, rounds + 1):
        magnitude_prune(model, schedule(r), scope, names)
        rewind(model, holder["state"])
        fit(model, train, config)
        acc = evaluate(model, test) if test is not None else None
        result.rounds.append({"round": r, "sparsity": sparsity_of(model, names), "accuracy": acc})
    result.masks = get_masks(model)
    result.ticket_accuracy = result.rounds[-1]["accuracy"]
    if control:
        result.reinit_accuracy = _control(model, result.masks, train, test, config, control_seed)
    return result


def _control(model, masks, train, test, config, seed) -> float | None:
    """Same mask, random init, same training."""
    clone = clone_model(model)
    reinitialize(clone, seed)
    fit(clone, train, config)
    return evaluate(clone, test) if test is not None else None
