"""Calibration passes: gradients and activation statistics, computed once per context.

Both passes leave the user's model exactly as they found it: modules are put in eval
mode (so BatchNorm running statistics are not updated and dropout is off) and their
training flags restored, ``requires_grad`` and ``.grad`` of every parameter are restored,
and every hook is removed in a ``finally`` block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from prunekit.importance.context import ImportanceContext, batch_loss, call_model


@dataclass
class GradStats:
    """Gradient statistics of one parameter over the calibration batches.

    ``mean = (1/B) Σ_b ∂L_b/∂w`` and ``sq_mean = (1/B) Σ_b (∂L_b/∂w)²`` (the diagonal of
    the empirical Fisher information).
    """

    mean: torch.Tensor
    sq_mean: torch.Tensor


@dataclass
class ActStats:
    """Activation statistics of one (module, dim) output, per feature along ``dim``.

    ``abs_sum[f] = Σ |a_f|`` and ``nonpos[f] = #{a_f ≤ 0}`` over ``count`` elements per
    feature (all batches, calls and positions).
    """

    abs_sum: torch.Tensor
    nonpos: torch.Tensor
    count: int = 0


@contextmanager
def preserved_state(model: nn.Module, need_grad: bool) -> Iterator[list]:
    """Eval mode (and ``requires_grad`` on floating params if ``need_grad``) for the block.

    Yields a list to which the caller appends hook handles; they are removed on exit.
    """
    training = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    saved = [(p, p.requires_grad, p.grad) for p in params]
    handles: list = []
    try:
        model.eval()
        if need_grad:
            for p in params:
                p.grad = None
                if p.is_floating_point():
                    p.requires_grad_(True)
        yield handles
    finally:
        for handle in handles:
            handle.remove()
        for p, requires_grad, grad in saved:
            p.requires_grad_(requires_grad)
            p.grad = grad
        for module, flag in training:
            module.training = flag


def gradient_stats(
    model: nn.Module, ctx: ImportanceContext, criterion: str
) -> dict[str, GradStats]:
    """Per-parameter :class:`GradStats` keyed by every (also tied) parameter name."""
    return ctx.cached("gradients", model, lambda: _gradient_pass(model, ctx, criterion))


def activation_stats(
    model: nn.Module, ctx: ImportanceContext, criterion: str
) -> dict[tuple[str, int], dict[int, ActStats]]:
    """``{(module_name, dim): {n_features: ActStats}}`` for every module's tensor output.

    ``dim`` is stored both non-negative and negative; the batch dimension 0 is skipped
    for outputs with two or more dimensions. A module called with outputs of several
    widths keeps one entry per width.
    """
    return ctx.cached("activations", model, lambda: _activation_pass(model, ctx, criterion))


def _gradient_pass(
    model: nn.Module, ctx: ImportanceContext, criterion: str
) -> dict[str, GradStats]:
    batches = ctx.calibration_batches(criterion)
    named = [(n, p) for n, p in model.named_parameters(remove_duplicate=False)]
    unique = {id(p): p for _, p in named if p.is_floating_point()}
    sums = {k: torch.zeros_like(p, dtype=torch.float32) for k, p in unique.items()}
    squares = {k: torch.zeros_like(p, dtype=torch.float32) for k, p in unique.items()}
    with preserved_state(model, need_grad=True), torch.enable_grad():
        for inputs, target in _progress(batches, ctx, f"{criterion}: gradients"):
            for p in unique.values():
                p.grad = None
            batch_loss(ctx, call_model(model, inputs), target).backward()
            for k, p in unique.items():
                if p.grad is not None:
                    grad = p.grad.detach().float()
                    sums[k] += grad
                    squares[k] += grad * grad
    n = len(batches)
    return {
        name: GradStats(sums[id(p)] / n, squares[id(p)] / n)
        for name, p in named
        if id(p) in unique
    }


def _activation_pass(
    model: nn.Module, ctx: ImportanceContext, criterion: str
) -> dict[tuple[str, int], dict[int, ActStats]]:
    batches = ctx.calibration_batches(criterion)
    stats: dict[tuple[str, int], dict[int, ActStats]] = {}
    names: dict[int, list[str]] = {}
    modules = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), []).append(name)
        modules[id(module)] = module
    with preserved_state(model, need_grad=False) as handles, torch.no_grad():
        for key, module in modules.items():
            hook = _stats_hook(stats, names[key])
            handles.append(module.register_forward_hook(hook))
        for inputs, _ in _progress(batches, ctx, f"{criterion}: activations"):
            call_model(model, inputs)
    return stats


def _stats_hook(stats: dict, names: list[str]):
    def hook(module: nn.Module, args: object, output: object) -> None:
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return
        if output.dim() == 0:
            return
        a = output.detach()
        absval, nonpos = a.abs(), (a <= 0)
        first = 1 if a.dim() >= 2 else 0
        for d in range(first, a.dim()):
            other = [i for i in range(a.dim()) if i != d]
            s_abs = absval.sum(other) if other else absval
            s_np = nonpos.sum(other) if other else nonpos
            for name in names:
                by_width = _entry_table(stats, name, d, a.dim())
                _accumulate(by_width, s_abs, s_np, a.numel() // a.shape[d])

    return hook


def _entry_table(stats: dict, name: str, dim: int, ndim: int) -> dict[int, ActStats]:
    """The shared ``{width: ActStats}`` table of ``(name, dim)`` and ``(name, dim - ndim)``."""
    pos, neg = (name, dim), (name, dim - ndim)
    table = stats.get(pos) or stats.get(neg) or {}
    stats[pos] = stats[neg] = table
    return table


def _accumulate(by_width: dict[int, ActStats], s_abs, s_np, count: int) -> None:
    width = s_abs.shape[0]
    entry = by_width.get(width)
    if entry is None:
        zeros = torch.zeros(width, dtype=torch.float64)
        entry = by_width[width] = ActStats(zeros, zeros.clone())
    entry.abs_sum += s_abs.to("cpu", torch.float64)
    entry.nonpos += s_np.to("cpu", torch.float64)
    entry.count += count


def _progress(batches: list, ctx: ImportanceContext, desc: str):
    return tqdm(batches, desc=desc, disable=not ctx.progress, leave=False)
