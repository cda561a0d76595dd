"""Choose blocks to drop by score and remove them: :func:`prune_depth`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.structures.depth import Block, DepthPlan, find_blocks, merge_plans, remove_blocks
from prunekit.structures.scoring import score_blocks


@dataclass
class DepthResult:
    """What :func:`prune_depth` did: the (same, now shorter) model, the plan, the scores
    of every candidate block before each removal round and the blocks found."""

    model: nn.Module
    plan: DepthPlan
    scores: list[dict[str, float]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


def prune_depth(
    model: nn.Module,
    example_inputs: Any,
    *,
    n_blocks: int | None = None,
    ratio: float | None = None,
    method: str = "angular",
    batches: Iterable[Any] | None = None,
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
    iterative: bool = False,
) -> DepthResult:
    """Remove the ``n_blocks`` lowest-scored residual blocks (in place, all or nothing).

    Parameters
    ----------
    n_blocks : int, optional
        How many blocks to remove. Exactly one of ``n_blocks`` and ``ratio``.
    ratio : float, optional
        Fraction in [0, 1) of the removable blocks to remove (rounded to nearest).
    method : str
        Block score (``"angular"``, ``"cosine"``, ``"loss"`` or an importance name).
    batches, loss_fn
        Calibration data, see :func:`prunekit.structures.scoring.score_blocks`.
    iterative : bool
        Remove one block at a time and re-score after each (slower, accounts for how
        blocks interact); otherwise score once and remove all at once.

    Raises
    ------
    ValueError
        Bad ``n_blocks``/``ratio`` — including more blocks than the model can lose — with
        the model untouched.
    """
    blocks = find_blocks(model, example_inputs)
    n = _count(n_blocks, ratio, len(blocks))
    data = list(batches) if batches is not None else None
    if not iterative or n <= 1:
        scores = score_blocks(model, blocks, example_inputs, method=method, batches=data,
                              loss_fn=loss_fn)
        plan = remove_blocks(model, _lowest(scores, n), example_inputs, blocks=blocks)
        return DepthResult(model, plan, [scores], blocks)
    return _prune_iterative(model, example_inputs, n, method, data, loss_fn, blocks)


def _count(n_blocks: int | None, ratio: float | None, available: int) -> int:
    if (n_blocks is None) == (ratio is None):
        raise ValueError("give exactly one of n_blocks and ratio")
    if ratio is not None:
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        n_blocks = round(ratio * available)
    if not isinstance(n_blocks, int) or isinstance(n_blocks, bool) or n_blocks < 0:
        raise ValueError(f"n_blocks must be a non-negative int, got {n_blocks!r}")
    if n_blocks > available:
        raise ValueError(
            f"n_blocks: asked to remove {n_blocks} blocks but the model has only "
            f"{available} removable blocks"
        )
    return n_blocks


def _lowest(scores: dict[str, float], n: int) -> list[str]:
    return [name for name, _ in sorted(scores.items(), key=lambda kv: kv[1])[:n]]


def _prune_iterative(model: nn.Module, example_inputs: Any, n: int, method: str,
                     data: list[Any] | None, loss_fn: Any, blocks: list[Block]) -> DepthResult:
    """Greedy: score, drop the lowest, re-trace, repeat; plans are merged into one."""
    plans, history = [], []
    current = blocks
    for _ in range(n):
        scores = score_blocks(model, current, example_inputs, method=method, batches=data,
                              loss_fn=loss_fn)
        history.append(scores)
        plans.append(remove_blocks(model, _lowest(scores, 1), example_inputs, blocks=current))
        current = find_blocks(model, example_inputs)
    return DepthResult(model, merge_plans(plans), history, blocks)
