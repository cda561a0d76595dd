"""Scores of removable blocks on calibration data; higher means *keep*.

Registered scorers (``register_block_score``) take ``(model, blocks, batches, **opts)``
and return ``{block name: score}``:

- ``"angular"``: mean over positions of ``arccos(cos(x, y)) / π`` between a block's input
  ``x`` and output ``y`` (Gromov et al., 2024) — a block that barely turns the hidden
  state is cheap to drop. ``"cosine"``: mean ``1 - cos(x, y)``.
- ``"loss"``: how much the loss grows when the block is skipped (its output replaced by
  its input): ``L(skip b) - L(dense)``. Without ``loss_fn`` the loss is the mean squared
  change of the model output relative to the dense output, ``‖f_skip - f‖² / ‖f‖²``.
- any name registered in :mod:`prunekit.importance` (``"l1"``, ``"l2"`` ...): the block
  is scored as one group whose members are all its weights.

The feature axis of a hidden state is dim 1 for 4-D (N, C, H, W) tensors and the last
dim otherwise (tokens: N, T, D).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.inputs import call_model, inference_mode_of
from prunekit.structures._trace import first_tensor, main_tensor, replace_first_tensor
from prunekit.structures.depth import Block

BlockScore = Callable[..., dict[str, float]]
_SCORERS: dict[str, BlockScore] = {}


def register_block_score(name: str) -> Callable[[BlockScore], BlockScore]:
    """Register a block scorer under ``name`` (ValueError if taken)."""
    if name in _SCORERS:
        raise ValueError(f"block score {name!r} is already registered")

    def decorator(fn: BlockScore) -> BlockScore:
        _SCORERS[name] = fn
        return fn

    return decorator


def score_blocks(
    model: nn.Module,
    blocks: Sequence[Block],
    example_inputs: Any = None,
    *,
    method: str = "angular",
    batches: Iterable[Any] | None = None,
    loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Score ``blocks`` with ``method`` on ``batches`` (default: ``[example_inputs]``).

    With ``loss_fn`` each batch is an ``(inputs, target)`` pair (``"loss"`` only).
    Raises ValueError for an unknown ``method`` (listing the known ones) or no data.
    """
    data = list(batches) if batches is not None else [example_inputs]
    if not data or data[0] is None:
        raise ValueError("example_inputs/batches: no calibration data given")
    if not blocks:
        return {}
    scorer = _SCORERS.get(method)
    if scorer is not None:
        return scorer(model, blocks, data, loss_fn=loss_fn)
    return _importance_scores(model, blocks, method, data)


def available_scores() -> list[str]:
    """Names usable as ``method`` (block scorers; importance criteria work as well)."""
    return sorted(_SCORERS)


def _feature_cos(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dim = 1 if x.dim() == 4 else -1
    return nn.functional.cosine_similarity(x.double(), y.double(), dim=dim, eps=1e-12)


def _distance_scores(model: nn.Module, blocks: Sequence[Block], data: list[Any],
                     distance: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
    sums = {b.name: 0.0 for b in blocks}
    counts = dict.fromkeys(sums, 0)
    handles = []
    for b in blocks:
        def hook(m, args, kwargs, out, name=b.name):
            x, y = main_tensor(args, kwargs), first_tensor(out)
            d = distance(_feature_cos(x, y).clamp(-1.0, 1.0))
            sums[name] += float(d.sum())
            counts[name] += d.numel()
        handles.append(model.get_submodule(b.name).register_forward_hook(hook, with_kwargs=True))
    try:
        with inference_mode_of(model):
            for inputs in data:
                call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()
    return {n: sums[n] / max(counts[n], 1) for n in sums}


@register_block_score("angular")
def angular_scores(model: nn.Module, blocks: Sequence[Block], data: list[Any],
                   **_: Any) -> dict[str, float]:
    """Mean angular distance ``arccos(cos(x, y)) / π`` between block input and output."""
    return _distance_scores(model, blocks, data, lambda c: torch.arccos(c) / math.pi)


@register_block_score("cosine")
def cosine_scores(model: nn.Module, blocks: Sequence[Block], data: list[Any],
                  **_: Any) -> dict[str, float]:
    """Mean cosine distance ``1 - cos(x, y)`` between block input and output."""
    return _distance_scores(model, blocks, data, lambda c: 1.0 - c)


@register_block_score("loss")
def loss_scores(model: nn.Module, blocks: Sequence[Block], data: list[Any], *,
                loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
                **_: Any) -> dict[str, float]:
    """Loss increase when each block is skipped (one extra forward per block and batch)."""
    pairs = [(d[0], d[1]) if loss_fn is not None else (d, None) for d in data]
    with inference_mode_of(model):
        dense = [first_tensor(call_model(model, x)) for x, _ in pairs]
        base = sum(_loss(loss_fn, f, f, t) for f, (_, t) in zip(dense, pairs, strict=True))
        out = {}
        for b in blocks:
            with skipped(model, b.name):
                total = sum(_loss(loss_fn, first_tensor(call_model(model, x)), f, t)
                            for f, (x, t) in zip(dense, pairs, strict=True))
            out[b.name] = float(total - base) / len(pairs)
    return out


def _loss(loss_fn: Any, out: torch.Tensor, dense: torch.Tensor, target: Any) -> float:
    if loss_fn is not None:
        return float(loss_fn(out, target))
    num = (out.double() - dense.double()).pow(2).sum()
    return float(num / dense.double().pow(2).sum().clamp_min(1e-30))


@contextlib.contextmanager
def skipped(model: nn.Module, name: str) -> Iterator[None]:
    """Within the context the named block returns its input unchanged (a residual skip)."""

    def hook(m: nn.Module, args: tuple, kwargs: dict, out: Any) -> Any:
        return replace_first_tensor(out, main_tensor(args, kwargs))

    handle = model.get_submodule(name).register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@dataclass(frozen=True)
class _BlockGroup:
    """A block seen as one group of size 1 for :mod:`prunekit.importance` criteria."""

    id: str
    members: list[Any]
    size: int = 1
    sources: tuple = ()


@dataclass(frozen=True)
class _Member:
    param: str
    dim: int
    index: list[list[int]]


def _importance_scores(model: nn.Module, blocks: Sequence[Block], method: str,
                       data: list[Any]) -> dict[str, float]:
    from prunekit.importance.context import ImportanceContext
    from prunekit.importance.registry import available, get

    if method not in available():
        raise ValueError(f"method: unknown block score {method!r}; known: "
                         f"{available_scores() + available()}")
    fn = get(method)
    ctx = ImportanceContext(example_inputs=data[0], batches=data)
    out = {}
    for b in blocks:
        members = [_Member(f"{b.name}.{n}", 0, [list(range(p.shape[0]))])
                   for n, p in model.get_submodule(b.name).named_parameters() if p.dim() > 0]
        out[b.name] = float(fn(model, _BlockGroup(b.name, members), ctx)[0])
    return out
