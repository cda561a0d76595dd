"""Proximal group-lasso training: any torch optimizer, then the exact group soft-threshold.

Training minimizes ``J(w) = L(w) + λ·Σ_g w_g·‖w_g‖₂`` by proximal stochastic gradient:
after each ``optimizer.step()``, every channel ``c`` of every coupled group ``g`` (all the
tensor slices that are cut together, see :func:`prunekit.graph.build_groups`) is scaled by

``s_c = (1 − τ_g / ‖w_{g,c}‖₂)₊``,   ``τ_g = lr · λ · w_g``,

where ``‖w_{g,c}‖₂`` is taken over the parameter slices of all members (buffers such as
BatchNorm running statistics are skipped) and ``w_g = sqrt(elements per channel)``
(``weights="sqrt"``), 1 (``"ones"``), or the *cost* a channel saves when removed
(``weights="macs"``, ``"params"`` or ``"latency"``),

``w_{g,c} ∝ C(dense) − C(without channel c of g)``,

rescaled so that the mean over all channels equals the mean of the ``"sqrt"`` weights
(λ keeps its scale). A channel is zeroed once its gradient norm stays below ``λ·w_{g,c}``,
so cost weights cut where a channel is expensive and spare cheap ones (a LeNet-5 conv1
filter costs ~100× the MACs of an fc1 neuron but has only 1.6× its weights, so
``"sqrt"`` ranks them almost alike).
``min_keep`` channels of every group (the largest ``‖w_{g,c}‖/w_{g,c}``) are never
zeroed (a float in (0, 1) is a fraction of each group's size, rounded up), so no layer
collapses to nothing. Channels whose norm is below τ become *exactly*
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

from prunekit.layout import Slice
from prunekit.layout import slices as layout_slices
from prunekit.methods.cost import COST_KINDS, Cost, build_cost
from prunekit.methods.removal import fill, plan_removal
from prunekit.sparsity.optim import ProxOptimizer

WEIGHTINGS: dict[str, Callable[[int], float]] = {
    "sqrt": lambda n: math.sqrt(n),
    "ones": lambda n: 1.0,
    "size": lambda n: float(n),
}


@dataclass
class _Group:
    id: str
    size: int
    slices: list[Slice]
    elements: int  # parameter elements per channel
    weight: float = 1.0  # mean of channel_weights
    channel_weights: torch.Tensor | None = None  # w_{g,c}, shape (size,)

    def weights(self) -> torch.Tensor:
        if self.channel_weights is None:
            self.channel_weights = torch.full((self.size,), self.weight,
                                              device=self.slices[0].param.device)
        return self.channel_weights


@dataclass
class Budget:
    """Budget mode: keep ``fraction`` of the dense cost (``kind`` = "macs", "params" or
    "latency").

    ``kind="latency"`` predicts milliseconds on ``device`` with ``threads`` at
    ``batch_size`` (the example inputs repeated) with :class:`~prunekit.methods.cost.
    LatencyCost`: the model and its layers are timed once when the optimizer is built
    (seconds on a small CNN; layer timings are cached per device).

    λ follows dual ascent on the constraint ``cost(w) ≤ B`` in log space,
    ``log λ ← log λ + dual_lr·min(cost/B − 1, 1)`` while over budget and
    ``log λ ← log λ − dual_lr`` once it is met, every ``every`` steps, clamped to
    ``[lam_min, lam_max]``. The clip bounds how fast λ rises, because the cost reacts with
    a lag (channels reach zero some steps after λ is large enough); the full-rate decrease
    stops the shrinking of the surviving channels once the budget is met (the budget
    guard keeps the cost from dropping below ``B``, so the plain dual step would be ~0).
    ``fraction=0.25`` asks for 4× fewer MACs. The cost lands in
    ``[(1 − tolerance)·B, B]`` when channel sizes allow: a new zero that would take the
    cost below that window is refused while a cheaper channel can still close the gap.
    """

    fraction: float
    kind: str = "macs"
    dual_lr: float = 0.01
    every: int = 1
    lam_min: float = 1e-8
    lam_max: float = 10.0
    tolerance: float = 0.03
    device: str = "cpu"
    threads: int | None = 1
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"Budget.fraction must be in (0, 1], got {self.fraction!r}")
        if self.kind not in COST_KINDS:
            raise ValueError(f"Budget.kind must be one of {COST_KINDS}, got {self.kind!r}")
        if self.dual_lr <= 0 or self.every < 1:
            raise ValueError("Budget.dual_lr must be > 0 and Budget.every >= 1")
        if not 0.0 <= self.tolerance < 1.0:
            raise ValueError(f"Budget.tolerance must be in [0, 1), got {self.tolerance!r}")

    def build_cost(self, model: nn.Module, example_inputs: Any) -> Cost:
        """The cost model this budget is measured with."""
        extra = ({"device": self.device, "threads": self.threads,
                  "batch_size": self.batch_size} if self.kind == "latency" else {})
        return build_cost(model, self.kind, example_inputs, **extra)


@dataclass
class ZeroEvent:
    """Channels of a group first seen exactly zero at optimizer step ``step``."""

    step: int
    group_id: str
    channels: list[int]


@dataclass
class _State:
    seen: dict[str, set[int]] = field(default_factory=dict)
    events: list[ZeroEvent] = field(default_factory=list)
    lam_history: list[float] = field(default_factory=list)
    lam_at_budget: float | None = None
    step_at_budget: int | None = None


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel wrappers."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) \
        else model


def normalize_groups(model: nn.Module, group_set: Any, weights: str | Callable) -> list[_Group]:
    """Turn a graph GroupSet (or a list of groups) into parameter slices with weights.

    Cost weightings (``"macs"``, ...) start from the ``"sqrt"`` weights here; see
    :func:`cost_weights`.
    """
    if isinstance(weights, str) and weights in COST_KINDS:
        weights = "sqrt"
    weigh = WEIGHTINGS.get(weights) if isinstance(weights, str) else weights
    if weigh is None:
        raise ValueError(f"weights must be one of {tuple(WEIGHTINGS) + COST_KINDS} or a "
                         f"callable, got {weights!r}")
    groups = getattr(group_set, "groups", group_set)
    out = []
    for g in groups:
        try:
            slices = layout_slices(model, g)
        except ValueError as err:
            raise ValueError(f"group {g.id!r}: {err}") from err
        if not slices or not getattr(g, "prunable", True):
            continue
        # elements of the largest channel (channels differ only across concat branches)
        elements = max(int(sum(s.counts[c] * (s.param.numel() // s.param.shape[s.dim])
                               for s in slices)) for c in range(g.size))
        out.append(_Group(g.id, g.size, slices, elements, float(weigh(elements))))
    return out


def removed_counts(groups: Sequence[_Group], removal: dict[str, list[int]]
                   ) -> dict[tuple[str, int], int]:
    """Indices removed along each (parameter, dim) if ``removal`` is cut."""
    by_id = {g.id: g for g in groups}
    counts: dict[tuple[str, int], int] = {}
    for gid, chans in removal.items():
        for s in by_id[gid].slices:
            key = (s.name, s.dim)
            counts[key] = counts.get(key, 0) + int(s.counts[chans].sum())
    return counts


def cost_weights(groups: Sequence[_Group], cost: Cost) -> None:
    """Set ``w_{g,c} ∝ C(dense) − C(without channel c of g)`` in place, rescaled so that
    the mean over all channels equals the mean of the current (``"sqrt"``) weights.

    Channels that save nothing (a latency slope flattened by noise) get a floor of 1e-3
    times the mean, so the threshold stays finite and they are cut last.
    """
    dense = cost.cost()
    saved = [torch.tensor([dense - cost.cost(removed_counts(groups, {g.id: [c]}))
                           for c in range(g.size)], dtype=torch.float64) for g in groups]
    total = sum(float(s.sum()) for s in saved)
    channels = sum(g.size for g in groups)
    if not channels or total <= 0:
        raise ValueError("cost weights: removing a channel saves no cost in any group")
    reference = sum(g.weight * g.size for g in groups) / channels
    scale = reference * channels / total
    for g, s in zip(groups, saved):
        w = (s * scale).clamp_min(1e-3 * reference)
        g.channel_weights = w.to(torch.float32).to(g.slices[0].param.device)
        g.weight = float(w.mean())


def _sq_norms(s: Slice, size: int) -> torch.Tensor:
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


class ProximalGroupLasso(ProxOptimizer):
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
    weights : {"sqrt", "ones", "size", "macs", "params", "latency"} or callable
        ``w_g`` as a function of the elements per channel, or a cost kind: ``w_{g,c}``
        proportional to the cost removing channel ``c`` saves (mean rescaled to "sqrt";
        "macs"/"latency" need ``example_inputs``; "latency" uses the budget's device
        settings when the budget is a latency one, else the CPU with 1 thread).
    l1_ratio : float
        α in ``[0, 1)``: share of the L1 term (sparse-group lasso).
    budget : Budget, optional
        Adapt λ by dual ascent so the zero channels meet a MAC/param/latency budget.
    example_inputs : tensor or tuple, optional
        Needed for ``finalize`` and for a MAC budget.
    on_zero : callable, optional
        Called with each :class:`ZeroEvent` when channels first reach exactly zero.
    min_keep : int or float
        Channels of every group that are never zeroed (the strongest ones); 1 keeps the
        network connected. A float in (0, 1) is a fraction of each group's size:
        ``ceil(min_keep·size)`` (at least 1).
    cost_model : object with ``cost(removed)``, optional
        Use this cost model for the budget (and cost weights of the budget's kind)
        instead of building one, e.g. a :class:`~prunekit.methods.cost.LatencyCost`
        built once and shared between runs.
    weight_cost : object with ``cost(removed)``, optional
        The cost model behind ``weights=<cost kind>`` when it is not the budget's, e.g.
        ``weights="latency"`` with a MAC budget: a ``LatencyCost`` built at the batch size
        and device the model will run at (otherwise one is built on the CPU, 1 thread,
        at the example inputs' batch).

    The model is not modified by the constructor; invalid arguments raise ``ValueError``
    naming the argument.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: nn.Module, group_set: Any,
                 lam: float, weights: str | Callable = "sqrt", l1_ratio: float = 0.0,
                 budget: Budget | None = None, example_inputs: Any = None,
                 on_zero: Callable[[ZeroEvent], None] | None = None,
                 min_keep: int | float = 1,
                 cost_model: Cost | None = None,
                 weight_cost: Cost | None = None) -> None:
        super().__init__(optimizer, lam)
        if not 0.0 <= l1_ratio < 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1), got {l1_ratio}")
        if isinstance(min_keep, bool) or not (
                (isinstance(min_keep, int) and min_keep >= 1)
                or (isinstance(min_keep, float) and 0.0 < min_keep < 1.0)):
            raise ValueError(f"min_keep must be an int >= 1 or a float in (0, 1), "
                             f"got {min_keep!r}")
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget, got {type(budget).__name__}")
        self.model = unwrap(model)
        self.group_set = group_set
        self.groups = normalize_groups(self.model, group_set, weights)
        self.l1_ratio = float(l1_ratio)
        self.budget = budget
        self.example_inputs = example_inputs
        self.on_zero = on_zero
        self.min_keep = min_keep
        self.state = _State()
        self.hooks.append(ProximalGroupLasso._record_zeros)
        if budget is not None:
            self.hooks.append(ProximalGroupLasso._budget_hook)
        if budget is not None and cost_model is None:
            if budget.kind != "params" and example_inputs is None:
                raise ValueError(f"example_inputs is required for a {budget.kind} budget")
            cost_model = budget.build_cost(self.model, example_inputs)
        self.cost_model = cost_model if budget is not None else None
        if isinstance(weights, str) and weights in COST_KINDS:
            cost_weights(self.groups, weight_cost or self._weight_cost(weights, cost_model))
        self._weight = {g.id: g.weights() for g in self.groups}
        self.dense_cost = self.cost_model.cost() if self.cost_model is not None else None
        if budget is not None:
            self._check_reachable()

    def _weight_cost(self, kind: str, cost_model: Cost | None) -> Cost:
        """The cost model behind ``weights=kind`` (the budget's one when of that kind)."""
        if cost_model is not None and (self.budget is None or self.budget.kind == kind):
            return cost_model
        if kind != "params" and self.example_inputs is None:
            raise ValueError(f"weights={kind!r} needs example_inputs")
        if self.budget is not None and self.budget.kind == kind:
            return self.budget.build_cost(self.model, self.example_inputs)
        return build_cost(self.model, kind, self.example_inputs)

    def _min_width(self, g: _Group) -> int:
        """Channels of ``g`` that are never removed."""
        if isinstance(self.min_keep, float):
            return min(g.size, max(1, math.ceil(self.min_keep * g.size - 1e-9)))
        return min(g.size, self.min_keep)

    def _check_reachable(self) -> None:
        """A budget below the cost with every group cut to ``min_keep`` cannot be met."""
        floor_plan = {g.id: list(range(g.size - self._min_width(g))) for g in self.groups}
        floor = self.current_cost({k: v for k, v in floor_plan.items() if v})
        if self.budget.fraction * self.dense_cost < floor:
            raise ValueError(
                f"Budget.fraction={self.budget.fraction:g} is unreachable: with "
                f"min_keep={self.min_keep} channels per group the {self.budget.kind} cost "
                f"cannot go below {floor / self.dense_cost:.4f} of dense (layers outside "
                "the groups and fixed overhead stay)")

    def _budget_hook(self) -> None:
        """Budget control, a hook of the prox step: every ``budget.every`` steps, move λ
        toward the budget (dual ascent)."""
        if self.steps % self.budget.every == 0:
            self._dual_update()

    # -- the prox -------------------------------------------------------------------------
    def _lr(self, group: _Group) -> float:
        return self.lr(group.slices[0].param, f"group {group.id!r}: {group.slices[0].name!r}")

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
            tau = self._lr(g) * self.lam * (1.0 - self.l1_ratio) * g.weights()
            norms = channel_norms(g)
            scale = group_scale(norms, tau.to(norms.dtype))
            self._keep_strongest(g, scale, norms)
            scales[g.id] = (scale, norms)
        if self.budget is not None:
            self._guard_budget(scales)
        for g in self.groups:
            _scale_slices(g, scales[g.id][0])

    def _keep_strongest(self, g: _Group, scale: torch.Tensor, norms: torch.Tensor) -> None:
        """Never zero the last ``min_keep`` channels: if fewer would survive, the strongest
        (largest ``‖w_c‖/w_c``) that this step would zero are left unchanged."""
        keep = min(self._min_width(g), int((norms > 0).sum()))
        if int((scale > 0).sum()) >= keep:
            return
        strongest = torch.topk(norms / g.weights().to(norms.dtype), keep).indices
        dying = strongest[scale[strongest] == 0]
        scale[dying] = 1.0

    def _guard_budget(self, scales: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Zeroed groups cannot regrow (their gradient is zero), so in budget mode a step
        may not cut below the budget: new zeros are accepted smallest-first only while the
        cost is above ``B``, and not when one would take the cost below
        ``(1 − tolerance)·B``; the rest are left unchanged this step."""
        zeros = {gid: torch.nonzero(n == 0).flatten().tolist() for gid, (_, n) in scales.items()}
        new = [(float(n[c] / self._weight[gid][c]), gid, c) for gid, (s, n) in scales.items()
               for c in torch.nonzero((s == 0) & (n > 0)).flatten().tolist()]
        target = self.budget.fraction * self.dense_cost
        everything = {gid: zeros[gid] + [c for _, g, c in new if g == gid] for gid in zeros}
        if not new or self.current_cost(everything) >= target:
            return
        plan = {gid: list(ch) for gid, ch in zeros.items()}
        accepted = fill(plan, [(gid, c) for _, gid, c in sorted(new)], self.current_cost,
                        target, self.budget.tolerance, fallback=False)
        for _, gid, c in new:
            if (gid, c) not in accepted:
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
                event = ZeroEvent(self.steps, gid, new)
                self.state.events.append(event)
                if self.on_zero is not None:
                    self.on_zero(event)

    # -- budget -------------------------------------------------------------------------
    def removed_counts(self, removal: dict[str, list[int]]) -> dict[tuple[str, int], int]:
        """Indices removed along each (parameter, dim) if ``removal`` is cut."""
        return removed_counts(self.groups, removal)

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
            self.state.step_at_budget = self.steps
        lam = max(self.lam, self.budget.lam_min) * math.exp(self.budget.dual_lr * gap)
        self.lam = min(max(lam, self.budget.lam_min), self.budget.lam_max)
        self.state.lam_history.append(self.lam)

    def removal_plan(self, enforce_budget: bool = True,
                     round_to: int = 1) -> dict[str, list[int]]:
        """Channels to cut: the zero ones, plus (budget mode) the smallest ``‖w_c‖/w_c``
        channels needed to meet the budget, skipping those that would overshoot below
        ``(1 − tolerance)·B`` while a cheaper one remains. The ``min_keep`` strongest
        channels of every group are kept.

        ``round_to = m > 1`` then makes every kept width a multiple of ``m`` (kernels tile
        channels: a width between two multiples costs about as much as the next one up —
        ``prunekit.hardware.probe_widths`` finds ``m`` for a device). Widths round *down*
        by cutting the weakest kept channels, so a budget stays met; a width that would
        fall below ``min_keep`` rounds *up* instead, bringing back the strongest cut
        channels. Groups of at most ``m`` channels are left as they are.
        """
        if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
            raise ValueError(f"round_to must be an int >= 1, got {round_to!r}")
        norms = {g.id: channel_norms(g) / self._weight[g.id].to(torch.float64)
                 for g in self.groups}
        target = self.budget.fraction * self.dense_cost \
            if enforce_budget and self.budget is not None else None
        return plan_removal(norms, {g.id: self._min_width(g) for g in self.groups},
                            self.zero_groups(), round_to, target,
                            self.current_cost if target is not None else None,
                            self.budget.tolerance if target is not None else 0.0)

    finalize_report = None  # the last finalize()'s FinalizeReport (not a dataclass field)

    def finalize(self, example_inputs: Any = None, enforce_budget: bool = True,
                 restore: dict[str, torch.Tensor] | None = None, round_to: int = 1) -> Any:
        """Physically remove the cut channels with :func:`prunekit.surgery.remove_channels`.

        Channels that are exactly zero go for free (outputs unchanged). To meet a budget
        (``enforce_budget``) or ``round_to``, ``finalize`` also cuts channels that are *not*
        zero, and that changes the outputs: every such cut is reported — how many, their
        joint norm, and the change of the outputs on the example inputs (max absolute and
        relative) — as a line in the returned plan's ``notes`` and as
        :attr:`finalize_report` (a :class:`FinalizeReport`).

        ``restore`` (a state dict of this model, e.g. the weights training started from)
        is loaded *after* the channels to cut are chosen and before the cut: the prox
        picks which channels go, and the survivors lose the shrinkage the penalty put on
        them (debiasing, the network analogue of refitting least squares on the support a
        lasso selected). All or nothing: if the cut fails, the model keeps its trained
        weights. ``round_to``: kept widths become multiples of it (see
        :meth:`removal_plan`; measured on a VGG-style CNN on CPU: 8.43× faster at 10.1×
        fewer MACs rounded to ×8 vs 5.19× at 8.03× unrounded). The model changes in
        place; build a new optimizer afterwards. Returns the Plan.
        """
        from prunekit.measure.guards import output_tensor
        from prunekit.surgery import remove_channels, transaction

        inputs = example_inputs if example_inputs is not None else self.example_inputs
        if inputs is None:
            raise ValueError("finalize needs example_inputs (here or in the constructor)")
        plan = self.removal_plan(enforce_budget, round_to)
        nonzero, norm = self._nonzero_cut(plan)
        before = output_tensor(self.model, inputs)
        # load_state_dict writes in place: the transaction copies the trained values
        with transaction(self.model, copy_values=restore is not None):
            if restore is not None:
                try:
                    self.model.load_state_dict(restore)
                except (RuntimeError, TypeError, AttributeError) as err:
                    raise ValueError(f"restore is not a state dict of this model: {err}"
                                     ) from err
            result = remove_channels(self.model, self.group_set, plan, inputs)
        report = FinalizeReport(sum(map(len, plan.values())), nonzero, norm,
                                restored=restore is not None,
                                reasons=self._cut_reasons(enforce_budget, round_to))
        report.measure(before, output_tensor(self.model, inputs))
        self.finalize_report = report
        result.notes.append(report.note())
        return result

    def _nonzero_cut(self, plan: dict[str, list[int]]) -> tuple[int, float]:
        """How many channels of ``plan`` are not exactly zero now, and their joint ‖·‖₂."""
        by_id = {g.id: g for g in self.groups}
        count, sq = 0, 0.0
        for gid, chans in plan.items():
            norms = channel_norms(by_id[gid])[chans]
            count += int((norms > 0).sum())
            sq += float(norms.double().pow(2).sum())
        return count, math.sqrt(sq)

    def _cut_reasons(self, enforce_budget: bool, round_to: int) -> list[str]:
        """Why ``finalize`` may cut non-zero channels (for the note)."""
        reasons = ["to meet the budget"] if enforce_budget and self.budget is not None else []
        return reasons + ([f"to round widths to multiples of {round_to}"]
                          if round_to > 1 else [])


@dataclass
class FinalizeReport:
    """What :meth:`ProximalGroupLasso.finalize` cut and how much the outputs moved.

    ``nonzero`` of the ``removed`` channels were not exactly zero when chosen (budget
    top-up or rounding); ``nonzero_norm`` is their joint ‖·‖₂ over all member slices.
    ``max_abs_diff`` / ``rel_diff`` compare the model's first output on the example inputs
    right before ``finalize`` with the result (``rel_diff`` ÷ max |output before|; None
    when the model returns no tensor). With ``restored`` the weights were reloaded before
    the cut, so the outputs change by design.
    """

    removed: int
    nonzero: int
    nonzero_norm: float
    restored: bool = False
    reasons: list[str] = field(default_factory=list)
    max_abs_diff: float | None = None
    rel_diff: float | None = None

    def measure(self, before: torch.Tensor | None, after: torch.Tensor | None) -> None:
        from prunekit.measure.guards import output_change

        if before is not None and after is not None and before.shape == after.shape:
            self.max_abs_diff, self.rel_diff = output_change(before, after)

    @property
    def outputs_changed(self) -> bool:
        return self.nonzero > 0 or self.restored

    def note(self) -> str:
        """One line for ``Plan.notes``."""
        delta = (None if self.max_abs_diff is None else
                 f"max |Δ| {self.max_abs_diff:.3g} (relative {self.rel_diff:.3g})")
        if not self.outputs_changed:
            tail = f"unchanged up to rounding ({delta})" if delta else "not compared"
            return (f"finalize removed {self.removed} channel(s), all exactly zero: outputs "
                    f"on the example inputs {tail}")
        why = " and ".join(self.reasons) or "as planned"
        what = (f"finalize removed {self.nonzero} NON-ZERO channel(s) {why} (of "
                f"{self.removed} removed; their norm {self.nonzero_norm:.3g})"
                if self.nonzero else f"finalize removed {self.removed} channel(s), all zero")
        restored = "; weights were restored before the cut" if self.restored else ""
        tail = f"changed by {delta}" if delta else "not compared (no tensor output)"
        return f"{what}{restored}: outputs on the example inputs {tail}"


