"""Proximal group-lasso training: any torch optimizer, then the exact group soft-threshold.

Training minimizes ``J(w) = L(w) + λ·Σ_g w_g·‖w_g‖₂`` by proximal stochastic gradient:
after each ``optimizer.step()``, every channel ``c`` of every coupled group ``g`` (all the
tensor slices that are cut together, see :func:`prunekit.graph.build_groups`) is scaled by

``s_c = (1 − τ_g / ‖w_{g,c}‖₂)₊``,   ``τ_g = lr · λ · w_g``,

where ``‖w_{g,c}‖₂`` is taken over the parameter slices of all members (buffers such as
BatchNorm running statistics are skipped) and ``w_g = sqrt(elements per channel)``
(``weights="sqrt"``) or 1 (``"ones"``). Channels whose norm is below τ become *exactly*
zero, and by zero-group invariance :meth:`ProximalGroupLasso.finalize` can remove them
with no change to the outputs. With ``l1_ratio = α > 0`` the penalty is sparse-group,
``λ·(α‖w‖₁ + (1−α)Σ_g w_g‖w_g‖₂)``, whose prox is the L1 soft-threshold followed by the
group one. Groups that share a tensor (a conv cut along its output and its input
channels) are thresholded one after the other (a standard approximation for overlaps).
With Adam-like optimizers the step ``lr`` is used as the prox step (the preconditioner is
ignored), which still gives exact zeros.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.methods.cost import CostModel

WEIGHTINGS: dict[str, Callable[[int], float]] = {
    "sqrt": lambda n: math.sqrt(n),
    "ones": lambda n: 1.0,
    "size": lambda n: float(n),
}


@dataclass
class _Slice:
    """A member tensor: indices ``flat`` along ``dim``, ``owner[i]`` the channel of
    ``flat[i]``, ``counts[c]`` the number of indices of channel ``c`` (may be 0)."""

    name: str
    param: torch.Tensor
    dim: int
    flat: torch.Tensor
    owner: torch.Tensor
    counts: torch.Tensor


@dataclass
class _Group:
    id: str
    size: int
    slices: list[_Slice]
    elements: int  # parameter elements per channel
    weight: float = 1.0


@dataclass
class Budget:
    """Budget mode: keep ``fraction`` of the dense cost (``kind`` = "macs" or "params").

    λ follows dual ascent on the constraint ``cost(w) ≤ B`` in log space,
    ``log λ ← log λ + dual_lr·min(cost/B − 1, 1)`` while over budget and
    ``log λ ← log λ − dual_lr`` once it is met, every ``every`` steps, clamped to
    ``[lam_min, lam_max]``. The clip bounds how fast λ rises, because the cost reacts with
    a lag (channels reach zero some steps after λ is large enough); the full-rate decrease
    stops the shrinking of the surviving channels once the budget is met (the budget
    guard keeps the cost from dropping below ``B``, so the plain dual step would be ~0).
    ``fraction=0.25`` asks for 4× fewer MACs.
    """

    fraction: float
    kind: str = "macs"
    dual_lr: float = 0.01
    every: int = 1
    lam_min: float = 1e-8
    lam_max: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"Budget.fraction must be in (0, 1], got {self.fraction!r}")
        if self.dual_lr <= 0 or self.every < 1:
            raise ValueError("Budget.dual_lr must be > 0 and Budget.every >= 1")


@dataclass
class ZeroEvent:
    """Channels of a group first seen exactly zero at optimizer step ``step``."""

    step: int
    group_id: str
    channels: list[int]


@dataclass
class _State:
    step: int = 0
    seen: dict[str, set[int]] = field(default_factory=dict)
    events: list[ZeroEvent] = field(default_factory=list)
    lam_history: list[float] = field(default_factory=list)
    lam_at_budget: float | None = None


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel wrappers."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) \
        else model


def _resolve_tensor(model: nn.Module, name: str) -> torch.Tensor | None:
    """The parameter ``name`` (its dense original when masked); None for buffers."""
    params = dict(model.named_parameters())
    mod, _, leaf = name.rpartition(".")
    for candidate in (name, f"{mod}.parametrizations.{leaf}.original".lstrip(".")):
        if candidate in params:
            return params[candidate]
    buffers = dict(model.named_buffers())
    if name in buffers:
        return None
    raise ValueError(f"group member {name!r} is neither a parameter nor a buffer of the model")


def _make_slice(name: str, tensor: torch.Tensor, dim: int,
                index: Sequence[Sequence[int]]) -> _Slice:
    counts = torch.as_tensor([len(ix) for ix in index], dtype=torch.long)
    flat = torch.as_tensor([i for ix in index for i in ix], dtype=torch.long)
    owner = torch.repeat_interleave(torch.arange(len(index)), counts)
    if flat.numel() and (int(flat.max()) >= tensor.shape[dim] or int(flat.min()) < 0):
        raise ValueError(f"member {name!r}: index out of range for dim {dim} of size "
                         f"{tensor.shape[dim]}")
    dev = tensor.device
    return _Slice(name, tensor, dim, flat.to(dev), owner.to(dev), counts)


def normalize_groups(model: nn.Module, group_set: Any, weights: str | Callable) -> list[_Group]:
    """Turn a graph GroupSet (or a list of groups) into parameter slices with weights."""
    weigh = WEIGHTINGS.get(weights) if isinstance(weights, str) else weights
    if weigh is None:
        raise ValueError(f"weights must be one of {tuple(WEIGHTINGS)} or a callable")
    groups = getattr(group_set, "groups", group_set)
    out = []
    for g in groups:
        slices = []
        for m in g.members:
            tensor = _resolve_tensor(model, m.param)
            if tensor is None:
                continue
            if len(m.index) != g.size:
                raise ValueError(f"group {g.id!r}: member {m.param!r} has {len(m.index)} "
                                 f"channels, the group has {g.size}")
            slices.append(_make_slice(m.param, tensor, m.dim, m.index))
        if not slices or not getattr(g, "prunable", True):
            continue
        # elements of the largest channel (channels differ only across concat branches)
        elements = max(int(sum(s.counts[c] * (s.param.numel() // s.param.shape[s.dim])
                               for s in slices)) for c in range(g.size))
        out.append(_Group(g.id, g.size, slices, elements, float(weigh(elements))))
    return out


def _sq_norms(s: _Slice, size: int) -> torch.Tensor:
    """Σ of squares of the slice, per channel (channels with no index get 0)."""
    picked = s.param.detach().index_select(s.dim, s.flat).movedim(s.dim, 0)
    per_index = picked.reshape(s.flat.numel(), -1).pow(2).sum(dim=1)
    return torch.zeros(size, dtype=per_index.dtype, device=per_index.device).index_add_(
        0, s.owner, per_index)


def channel_norms(group: _Group) -> torch.Tensor:
    """‖w_{g,c}‖₂ per channel over every parameter member slice."""
    return torch.sqrt(sum(_sq_norms(s, group.size) for s in group.slices))


def _scale_slices(group: _Group, scale: torch.Tensor) -> None:
    for s in group.slices:
        full = torch.ones(s.param.shape[s.dim], dtype=s.param.dtype, device=s.param.device)
        full[s.flat] = scale.to(full.dtype)[s.owner]
        shape = [1] * s.param.ndim
        shape[s.dim] = -1
        s.param.data.mul_(full.view(shape))


class ProximalGroupLasso:
    """Wrap ``optimizer``; after each step apply the group soft-threshold to ``group_set``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Any optimizer over the model's parameters.
    model : nn.Module
        The model (a DDP wrapper is unwrapped; member names refer to the inner model).
    group_set : GroupSet or list of groups
        From :func:`prunekit.graph.build_groups`: ``.groups``, each with ``.id``, ``.size``
        and ``.members`` (``.param``, ``.dim``, ``.index``).
    lam : float
        λ ≥ 0 (the starting value in budget mode).
    weights : {"sqrt", "ones", "size"} or callable
        ``w_g`` as a function of the elements per channel.
    l1_ratio : float
        α in ``[0, 1)``: share of the L1 term (sparse-group lasso).
    budget : Budget, optional
        Adapt λ by dual ascent so the zero channels meet a MAC/param budget.
    example_inputs : tensor or tuple, optional
        Needed for ``finalize`` and for a MAC budget.
    on_zero : callable, optional
        Called with each :class:`ZeroEvent` when channels first reach exactly zero.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module, group_set: Any,
                 lam: float, weights: str | Callable = "sqrt", l1_ratio: float = 0.0,
                 budget: Budget | None = None, example_inputs: Any = None,
                 on_zero: Callable[[ZeroEvent], None] | None = None) -> None:
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        if not 0.0 <= l1_ratio < 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1), got {l1_ratio}")
        self.optimizer = optimizer
        self.model = unwrap(model)
        self.group_set = group_set
        self.groups = normalize_groups(self.model, group_set, weights)
        self.lam = float(lam)
        self.l1_ratio = float(l1_ratio)
        self.budget = budget
        self.example_inputs = example_inputs
        self.on_zero = on_zero
        self.state = _State()
        self._weight = {g.id: g.weight for g in self.groups}
        self._lr_of = {id(p): pg for pg in optimizer.param_groups for p in pg["params"]}
        self.cost_model = (CostModel.build(self.model, budget.kind, example_inputs)
                           if budget is not None else None)
        self.dense_cost = self.cost_model.cost() if self.cost_model is not None else None

    # -- optimizer protocol -------------------------------------------------------------
    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        """Inner optimizer state plus λ and the step counter (for checkpoints)."""
        return {"optimizer": self.optimizer.state_dict(), "lam": self.lam,
                "step": self.state.step}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.lam = float(state["lam"])
        self.state.step = int(state["step"])

    def step(self, closure: Callable | None = None) -> Any:
        """``optimizer.step()``, then the prox, then zero-group bookkeeping and budget update."""
        loss = self.optimizer.step(closure)
        self.state.step += 1
        self.prox()
        self._record_zeros()
        if self.budget is not None and self.state.step % self.budget.every == 0:
            self._dual_update()
        return loss

    # -- the prox -------------------------------------------------------------------------
    def _lr(self, group: _Group) -> float:
        pg = self._lr_of.get(id(group.slices[0].param))
        if pg is None:
            raise ValueError(f"group {group.id!r}: {group.slices[0].name!r} is not optimized "
                             "by the wrapped optimizer")
        return float(pg["lr"])

    @torch.no_grad()
    def prox(self) -> None:
        """Apply the (sparse-)group soft-threshold once, with the current lr and λ."""
        from prunekit.sparsity.prox import group_scale, prox_l1

        if self.l1_ratio > 0:
            done: set[int] = set()
            for g in self.groups:
                tau = self._lr(g) * self.lam * self.l1_ratio
                for s in g.slices:
                    if id(s.param) not in done:
                        done.add(id(s.param))
                        s.param.data.copy_(prox_l1(s.param.data, tau, 1.0))
        scales = {}
        for g in self.groups:  # all scales from the same weights (order-independent)
            tau = self._lr(g) * self.lam * (1.0 - self.l1_ratio) * g.weight
            norms = channel_norms(g)
            scale = group_scale(norms, tau)
            if not bool((scale > 0).any()) and bool((norms > 0).any()):
                scale[torch.argmax(norms)] = 1.0  # never disconnect the network
            scales[g.id] = (scale, norms)
        if self.budget is not None:
            self._guard_budget(scales)
        for g in self.groups:
            _scale_slices(g, scales[g.id][0])

    def _guard_budget(self, scales: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Zeroed groups cannot regrow (their gradient is zero), so in budget mode a step
        may not cut below the budget: new zeros are accepted smallest-first only while the
        cost is above ``B``; the rest are left unchanged this step."""
        zeros = {gid: torch.nonzero(n == 0).flatten().tolist() for gid, (_, n) in scales.items()}
        new = [(float(n[c]) / self._weight[gid], gid, c) for gid, (s, n) in scales.items()
               for c in torch.nonzero((s == 0) & (n > 0)).flatten().tolist()]
        target = self.budget.fraction * self.dense_cost
        everything = {gid: zeros[gid] + [c for _, g, c in new if g == gid] for gid in zeros}
        if not new or self.current_cost(everything) >= target:
            return
        plan = {gid: list(ch) for gid, ch in zeros.items()}
        for _, gid, c in sorted(new):
            if self.current_cost(plan) > target:
                plan[gid].append(c)
            else:
                scales[gid][0][c] = 1.0

    # -- zero groups --------------------------------------------------------------------
    def zero_groups(self) -> dict[str, list[int]]:
        """``{group id: channels whose parameter slices are all exactly zero}``."""
        out = {}
        for g in self.groups:
            zero = torch.nonzero(channel_norms(g) == 0).flatten().tolist()
            if zero:
                out[g.id] = zero
        return out

    @property
    def events(self) -> list[ZeroEvent]:
        """Every :class:`ZeroEvent` so far, in order."""
        return self.state.events

    def _record_zeros(self) -> None:
        for gid, chans in self.zero_groups().items():
            seen = self.state.seen.setdefault(gid, set())
            new = [c for c in chans if c not in seen]
            if new:
                seen.update(new)
                event = ZeroEvent(self.state.step, gid, new)
                self.state.events.append(event)
                if self.on_zero is not None:
                    self.on_zero(event)

    # -- budget -------------------------------------------------------------------------
    def removed_counts(self, removal: dict[str, list[int]]) -> dict[tuple[str, int], int]:
        """Indices removed along each (parameter, dim) if ``removal`` is cut."""
        by_id = {g.id: g for g in self.groups}
        counts: dict[tuple[str, int], int] = {}
        for gid, chans in removal.items():
            for s in by_id[gid].slices:
                key = (s.name, s.dim)
                counts[key] = counts.get(key, 0) + int(s.counts[chans].sum())
        return counts

    def current_cost(self, removal: dict[str, list[int]] | None = None) -> float:
        """Cost model value after removing ``removal`` (default: the zero groups)."""
        if self.cost_model is None:
            raise ValueError("current_cost needs a budget (it defines the cost model)")
        removal = self.zero_groups() if removal is None else removal
        return self.cost_model.cost(self.removed_counts(removal))

    def _dual_update(self) -> None:
        ratio = self.current_cost() / (self.budget.fraction * self.dense_cost)
        # over budget: raise λ (clipped); met: lower it at the full rate, so the channels
        # that survive stop being shrunk and recover during the rest of training
        gap = min(ratio - 1.0, 1.0) if ratio > 1.0 else -1.0
        if ratio <= 1.0 and self.state.lam_at_budget is None:
            self.state.lam_at_budget = self.lam
        lam = max(self.lam, self.budget.lam_min) * math.exp(self.budget.dual_lr * gap)
        self.lam = min(max(lam, self.budget.lam_min), self.budget.lam_max)
        self.state.lam_history.append(self.lam)

    def removal_plan(self, enforce_budget: bool = True) -> dict[str, list[int]]:
        """Channels to cut: the zero ones, plus (budget mode) the smallest-norm channels
        needed to meet the budget. At least one channel of every group is kept."""
        norms = {g.id: channel_norms(g) / g.weight for g in self.groups}
        plan = {gid: list(ch) for gid, ch in self.zero_groups().items()}
        if enforce_budget and self.budget is not None:
            target = self.budget.fraction * self.dense_cost
            order = sorted((float(n[c]), gid, c) for gid, n in norms.items()
                           for c in range(len(n)) if c not in plan.get(gid, []))
            for _, gid, c in order:
                if self.current_cost(plan) <= target:
                    break
                plan.setdefault(gid, []).append(c)
        return _keep_one(plan, norms)

    def finalize(self, example_inputs: Any = None, enforce_budget: bool = True) -> Any:
        """Physically remove the cut channels with :func:`prunekit.surgery.remove_channels`.

        The model changes in place; build a new optimizer afterwards. Returns the Plan.
        """
        from prunekit.surgery import remove_channels

        inputs = example_inputs if example_inputs is not None else self.example_inputs
        if inputs is None:
            raise ValueError("finalize needs example_inputs (here or in the constructor)")
        plan = self.removal_plan(enforce_budget)
        return remove_channels(self.model, self.group_set, plan, inputs)


def _keep_one(plan: dict[str, list[int]], norms: dict[str, torch.Tensor]) -> dict:
    """Drop the largest-norm channel from any group that would lose all its channels."""
    out = {}
    for gid, chans in plan.items():
        chans = sorted(set(chans))
        if len(chans) >= len(norms[gid]):
            keep = int(torch.argmax(norms[gid]))
            chans = [c for c in chans if c != keep]
        if chans:
            out[gid] = chans
    return out
