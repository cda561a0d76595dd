"""Gradient criteria: first-order Taylor and second-order OBD / diagonal Fisher.

Gradients come from one calibration pass per context (see
:mod:`prunekit.importance.calibration`), over ``ctx.batches`` with ``ctx.loss_fn`` or,
without a loss, the self-supervised ``mean(output²)``.
"""

from __future__ import annotations

import torch
from torch import nn

from prunekit.importance.calibration import gradient_stats
from prunekit.importance.context import ImportanceContext
from prunekit.importance.registry import register
from prunekit.importance.slices import is_parameter, reduce_members, wide
from prunekit.importance.types import GroupLike


@register("taylor")
def taylor_importance(
    model: nn.Module, group: GroupLike, ctx: ImportanceContext
) -> torch.Tensor:
    """First-order Taylor estimate of the loss change when channel ``c`` is removed.

    ``s_c = | Σ_m Σ_{i ∈ slice_m(c)} w_i · ḡ_i |`` with ``ḡ = (1/B) Σ_b ∂L_b/∂w`` the
    mean gradient over the calibration batches: zeroing the channel's weights changes
    the loss by ``-Σ w·g`` to first order (Molchanov et al., 2019, group variant).

    ``L`` is ``ctx.loss_fn(output, target)``; without a ``loss_fn`` the self-supervised
    loss ``mean(output²)`` is used, so channels are ranked by how much they move the
    output. Buffers have no gradient and contribute nothing.
    """
    grads = gradient_stats(model, ctx, "taylor")
    parts = reduce_members(
        model, group, lambda m, w: wide(w) * grads[m.param].mean, _has_grad(grads)
    )
    return _sum(parts, group).abs()


@register("obd")
@register("fisher")
def fisher_importance(
    model: nn.Module, group: GroupLike, ctx: ImportanceContext
) -> torch.Tensor:
    """Second-order (Optimal Brain Damage) saliency with the diagonal empirical Fisher.

    ``s_c = ½ Σ_m Σ_{i ∈ slice_m(c)} w_i² · F_ii`` with ``F_ii = (1/B) Σ_b (∂L_b/∂w_i)²``
    the mean squared gradient over calibration batches, which approximates the Hessian
    diagonal of OBD (LeCun et al., 1990) at a minimum. Registered as ``"obd"`` and
    ``"fisher"``. The loss is as in :func:`taylor_importance`.
    """
    grads = gradient_stats(model, ctx, "fisher")
    parts = reduce_members(
        model,
        group,
        lambda m, w: wide(w).pow(2) * grads[m.param].sq_mean,
        _has_grad(grads),
    )
    return 0.5 * _sum(parts, group)


def _has_grad(grads: dict):
    """Select parameter members (unknown names raise); buffers have no gradient."""
    return lambda model, member: is_parameter(model, member) and member.param in grads


def _sum(parts: list[torch.Tensor], group: GroupLike) -> torch.Tensor:
    if not parts:
        return torch.zeros(group.size, dtype=torch.float64)
    return torch.stack(parts).sum(0)
