"""Calibration-aware criteria: the output error a channel's removal causes at its consumers.

A group's *consumers* are the layers that read its channels as input features (the next
conv, the linear layer after a flatten, an attention output projection reading heads, an
FFN down projection reading hidden units): its members along a registered layer's input
dim (:mod:`.linear_forms`). Each criterion streams the consumer's inputs over the
calibration batches (:mod:`.streams`, :mod:`.gram`) and scores channel ``c`` — the
columns ``S_c`` of the consumer's weight it owns — by the error its removal adds to that
layer's output, as a fraction of the layer's output energy so that groups compare:

* ``act_norm``: ``Σ_{i∈S_c} ‖W[:, i]‖² · E[x_i²]`` — the output energy the columns carry,
  without compensation (the activation-weighted norm, a channel-level Wanda).
* ``fluctuation``: ``Σ_{i∈S_c} ‖W[:, i]‖² · Var[x_i]`` — FLAP's fluctuation: what stays
  lost once the columns' mean is folded into the bias (``reconstruct="bias"``).
* ``obs``: ``tr(W_S [(H⁻¹)_SS]⁻¹ W_Sᵀ)``, ``H = X̃ᵀX̃ + λI`` — the optimal-brain-surgeon
  error: what stays lost after the *best* update of the other columns (and the bias)
  makes up for the removed ones (``reconstruct="ls"``). With ``greedy=True`` channels are
  removed one at a time, best first, updating ``H⁻¹`` and ``W`` after each removal, and
  a channel's score is the cumulative error at its removal: the ranking is then exactly
  the greedy OBS order, not a one-at-a-time approximation.

A group without a consumer (channels read only by norms or by functional ops) is scored
by ``fallback`` and noted in ``ctx.notes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prunekit.importance.calibration import preserved_state
from prunekit.importance.context import ImportanceContext
from prunekit.importance.gram import Gram, inverse
from prunekit.importance.linear_forms import LinearForm, form_of
from prunekit.importance.registry import get, register
from prunekit.importance.slices import owner_module
from prunekit.importance.streams import capture, execution_order
from prunekit.importance.types import GroupLike


@dataclass
class Consumer:
    """A layer reading a group's channels: its name, form and the columns per channel."""

    name: str
    form: LinearForm
    columns: list[list[int]]


def consumers(model: nn.Module, group: GroupLike) -> list[Consumer]:
    """The group's consumers: members cut along a registered layer's input dim."""
    found = []
    for member in group.members:
        module, attr = owner_module(model, member.param)
        form = form_of(module)
        if form is None or attr != "weight" or form.groups != 1:
            continue
        if member.dim % module.weight.dim() != form.in_dim:
            continue
        cols = [[i * form.block + t for i in idx for t in range(form.block)]
                for idx in member.index]
        found.append(Consumer(member.param.rpartition(".")[0], form, cols))
    return found


def layer_gram(model: nn.Module, ctx: ImportanceContext, name: str, criterion: str) -> Gram:
    """``Σ x̃ x̃ᵀ`` (with the ones column) of layer ``name``'s rows over the calibration
    batches, cached in ``ctx`` per layer and model state."""
    return ctx.cached(f"gram:{name}", model, lambda: _stream_gram(model, ctx, name, criterion))


def _stream_gram(model: nn.Module, ctx: ImportanceContext, name: str, criterion: str) -> Gram:
    module = model.get_submodule(name)
    form = form_of(module)
    batches = ctx.calibration_batches(criterion)
    gram: Gram | None = None
    with preserved_state(model, need_grad=False), torch.no_grad():
        calls = dict(execution_order(model, [name], batches[0][0])).get(name, 0)
        if not calls:
            raise ValueError(f"{criterion}: layer {name!r} is not called by the model")
        for inputs, _ in batches:
            for x in capture(model, module, inputs, calls=calls):
                rows = form.rows(x)
                if gram is None:
                    gram = Gram.empty(rows.shape[1], None, intercept=True, device=rows.device)
                gram.add(rows)
    return gram


def _scored(model: nn.Module, group: GroupLike, ctx: ImportanceContext, criterion: str,
            fallback: str | None) -> list[Consumer] | torch.Tensor:
    found = consumers(model, group)
    if found:
        return found
    if fallback is None or fallback in ("obs", "act_norm", "fluctuation"):
        raise ValueError(f"{criterion}: group {group.id!r} has no consuming layer (no member "
                         "along a Linear/Conv/Conv1D input dim)")
    ctx.note(f"{criterion}: group {group.id!r} has no consuming layer; scored by {fallback!r}")
    return get(fallback)(model, group, ctx)


def _weight(c: Consumer, with_bias: bool) -> torch.Tensor:
    w = c.form.weight().to(torch.float64)
    b = c.form.bias
    if with_bias:
        bias = b.detach().to(w) if b is not None else w.new_zeros(w.shape[0])
        w = torch.cat([w, bias[:, None].to(w.device)], dim=1)
    return w


@register("act_norm")
def act_norm_importance(model: nn.Module, group: GroupLike, ctx: ImportanceContext, *,
                        fallback: str | None = "l2") -> torch.Tensor:
    """``Σ_consumers Σ_{i∈S_c} ‖W[:, i]‖² E[x_i²]``, each consumer's share of its total."""
    return _diag_score(model, group, ctx, "act_norm", fallback, centered=False)


@register("fluctuation")
def fluctuation_importance(model: nn.Module, group: GroupLike, ctx: ImportanceContext, *,
                           fallback: str | None = "l2") -> torch.Tensor:
    """FLAP's ``Σ ‖W[:, i]‖² Var[x_i]``: the error left after bias compensation."""
    return _diag_score(model, group, ctx, "fluctuation", fallback, centered=True)


def _diag_score(model: nn.Module, group: GroupLike, ctx: ImportanceContext, criterion: str,
                fallback: str | None, centered: bool) -> torch.Tensor:
    found = _scored(model, group, ctx, criterion, fallback)
    if isinstance(found, torch.Tensor):
        return found
    total = torch.zeros(group.size, dtype=torch.float64)
    for c in found:
        gram = layer_gram(model, ctx, c.name, criterion)
        k = gram.k
        second = torch.diagonal(gram.xx)[:k] / gram.n
        if centered:
            second = second - (gram.xx[:k, k] / gram.n) ** 2
        per_col = c.form.weight().to(second).pow(2).sum(0) * second.clamp_min(0)
        whole = float(per_col.sum()) or 1.0
        total += torch.tensor([float(per_col[cols].sum()) for cols in c.columns],
                              dtype=torch.float64) / whole
    return total


@register("obs")
def obs_importance(model: nn.Module, group: GroupLike, ctx: ImportanceContext, *,
                   damping: float = 0.01, greedy: bool = True, max_greedy: int = 4096,
                   max_greedy_flops: float = 1e9, fallback: str | None = "l2"
                   ) -> torch.Tensor:
    """Optimal-brain-surgeon error of removing each channel at its consumers.

    ``damping`` is ``λ / mean(diag H)``; ``greedy`` removes channels one by one with
    ``H⁻¹``/``W`` updates, which costs about ``channels · Σ k²`` flops for consumers
    with ``k`` input columns: only for groups up to ``max_greedy`` channels and
    ``max_greedy_flops`` (a 512-channel group read by a 3×3 conv is ~10¹⁰: minutes).
    Otherwise (or ``greedy=False``) each channel alone with the full ``H⁻¹``, and the
    group is named in ``ctx.notes``.
    """
    if not isinstance(damping, float | int) or damping < 0:
        raise ValueError(f"obs: damping must be a number >= 0, got {damping!r}")
    found = _scored(model, group, ctx, "obs", fallback)
    if isinstance(found, torch.Tensor):
        return found
    problems = [_problem(model, ctx, c, damping) for c in found]
    flops = group.size * sum(p.hinv.shape[0] ** 2 for p in problems)
    if greedy and group.size <= max_greedy and flops <= max_greedy_flops:
        return _greedy(problems, group.size)
    if greedy:
        ctx.note(f"obs: group {group.id!r} ({group.size} channels) scored one channel at a "
                 f"time, not greedily (greedy OBS would take ~{flops:.1e} flops > "
                 f"max_greedy_flops={max_greedy_flops:.0e} or > max_greedy={max_greedy} "
                 "channels)")
    return sum(_one_shot(p) for p in problems)


@dataclass
class _Problem:
    """One consumer's OBS state: ``H⁻¹``, the weight ``W̃`` and its output energy."""

    hinv: torch.Tensor
    w: torch.Tensor
    energy: float
    columns: list[torch.Tensor]


def _problem(model: nn.Module, ctx: ImportanceContext, c: Consumer, damping: float) -> _Problem:
    gram = layer_gram(model, ctx, c.name, "obs")
    with_bias = c.form.bias is not None
    if not with_bias:
        k = gram.k
        gram = Gram(gram.xx[:k, :k], None, None, gram.n, intercept=False)
    w = _weight(c, with_bias).to(gram.xx.device)
    energy = float(((w @ gram.xx) * w).sum()) or 1.0
    cols = [torch.tensor(col, dtype=torch.long, device=w.device) for col in c.columns]
    return _Problem(inverse(gram, damping), w, energy, cols)


def _block_errors(p: _Problem, channels: list[int]) -> torch.Tensor:
    """``tr(W_S M_S⁻¹ W_Sᵀ) / energy`` for each channel's columns ``S`` (M = (H⁻¹)_SS)."""
    out = torch.zeros(len(channels), dtype=torch.float64)
    by_size: dict[int, list[int]] = {}
    for j, c in enumerate(channels):
        if len(p.columns[c]):
            by_size.setdefault(len(p.columns[c]), []).append(j)
    for size, js in by_size.items():
        idx = torch.stack([p.columns[channels[j]] for j in js])          # (m, s)
        if size == 1:   # one column: ‖w_j‖² / (H⁻¹)_jj
            col = idx[:, 0]
            err = p.w[:, col].pow(2).sum(0) / p.hinv[col, col].clamp_min(1e-300)
            out[torch.tensor(js)] = err.clamp_min(0).cpu() / p.energy
            continue
        m = p.hinv[idx[:, :, None], idx[:, None, :]]                       # (m, s, s)
        ws = p.w[:, idx].permute(1, 0, 2)                                  # (m, out, s)
        eye = torch.eye(size, dtype=m.dtype, device=m.device) * 1e-12
        sol = torch.linalg.solve(m + eye, ws.transpose(1, 2))              # (m, s, out)
        err = (ws.transpose(1, 2) * sol).sum((1, 2))
        out[torch.tensor(js)] = err.clamp_min(0).cpu() / p.energy
    return out


def _one_shot(p: _Problem) -> torch.Tensor:
    return _block_errors(p, list(range(len(p.columns))))


def _greedy(problems: list[_Problem], size: int) -> torch.Tensor:
    """Remove the cheapest channel, update every consumer, repeat; score = cumulative error."""
    scores = torch.zeros(size, dtype=torch.float64)
    left = list(range(size))
    total = 0.0
    while left:
        errs = sum(_block_errors(p, left) for p in problems)
        j = int(torch.argmin(errs))
        chosen = left.pop(j)
        total += float(errs[j])
        scores[chosen] = total
        for p in problems:
            _remove(p, p.columns[chosen])
    return scores


def _remove(p: _Problem, cols: torch.Tensor) -> None:
    """OBS update after zeroing columns ``cols``: ``W -= W_S M⁻¹ H⁻¹_S·``,
    ``H⁻¹ -= H⁻¹_·S M⁻¹ H⁻¹_S·`` (the inverse Hessian of the remaining columns)."""
    if not len(cols):
        return
    m = p.hinv[cols][:, cols]
    eye = torch.eye(len(cols), dtype=m.dtype, device=m.device) * 1e-12
    rows = p.hinv[cols]                                   # (s, k)
    coef = torch.linalg.solve(m + eye, rows)              # M⁻¹ H⁻¹_S·
    p.w -= p.w[:, cols] @ coef
    p.hinv -= rows.t() @ coef
    p.w[:, cols] = 0
    p.hinv[cols, :] = 0
    p.hinv[:, cols] = 0
