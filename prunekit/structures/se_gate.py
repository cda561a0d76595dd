"""Squeeze-and-excitation gates as a structure: remove the channels a gate keeps silencing.

An SE block computes ``y_c = x_c · g_c`` with ``g = σ(W_e δ(W_s pool(x)))`` per sample. On
calibration data we record every channel's gate values and summarize them: mean,
quantiles and ``below_c = P(g_c < threshold)``. A channel is *consistently suppressed*
when ``below_c ≥ consistency``: then ``y_c ≈ 0`` on almost every input and the channel
can go. It is cut, by :func:`prunekit.surgery.remove_channels`, from its whole coupled
group: the layers that produce ``x_c`` (and their normalization), the excite layer's
output ``c``, the squeeze layer's input ``c`` and every consumer of ``y``.

Removing ``x_c`` also removes ``pool(x)_c`` from the squeeze layer's input, which shifts
every other gate. With ``compensate=True`` its mean contribution is folded into the
squeeze bias, ``b_s ← b_s + Σ_{c removed} W_s[:, c]·E[pool(x)_c]`` (the best constant
replacement of the lost input), so the remaining gates move as little as possible.

With ``relative=True`` the test is on ``g̃_c = g_c / max_c' g_c'`` (per sample and block):
when normalization follows the block, the network can lower *all* gates of a block and
rescale downstream at no cost, so an absolute threshold would call every channel
suppressed; relative to the most open gate only the channels that are silenced *compared
with their siblings* qualify. This is the default (``relative=True``, ``threshold=0.1``):
on Fashion-MNIST (benchmarks/structures_features.py) the absolute test removed channels
of uniformly damped blocks and cost 54–72 pt, the relative one (compensated) ≤ 0.15 pt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.graph import GroupSet, build_groups
from prunekit.graph.oplog import OpLog
from prunekit.structures._se_trace import SEBlock, find_in_log, run_traced
from prunekit.structures.plancheck import check_header, check_surgery
from prunekit.structures.registry import Structure, register
from prunekit.surgery import Plan, SurgeryError, apply_plan, remove_channels
from prunekit.surgery import validate as v
from prunekit.surgery.state import Snapshot

PLAN_VERSION = 1
QUANTILES = (0.05, 0.5, 0.95)
__all__ = ["GateStats", "SEBlock", "SEPlan", "SEResult", "apply_se_plan", "find_se_blocks",
           "gate_stats", "prune_se", "se_groups", "remove_gate_channels", "score_gates"]


def find_se_blocks(model: nn.Module, example_inputs: Any, log: OpLog | None = None
                   ) -> list[SEBlock]:
    """The SE gates of ``model``: a query on one forward pass (``log``, a recorded pass,
    else one run here); the model is unchanged."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if log is not None:
        return list(find_in_log(model, log).values())
    return list(run_traced(model, [example_inputs], record=False).found.values())


@dataclass
class GateStats:
    """Per-channel gate statistics of every SE block over the calibration batches.

    ``blocks[excite]`` maps to ``{"mean", "q05", "q50", "q95", "max", "below"}`` lists
    (one value per channel; ``below`` is the fraction of samples with ``g < threshold``,
    or ``g / max_c g < threshold`` when ``relative``);
    ``samples`` counts the samples seen; ``squeeze_mean[excite]`` is the per-channel mean
    of the squeeze layer's input (for compensation).
    """

    threshold: float
    samples: int
    se: dict[str, SEBlock]
    blocks: dict[str, dict[str, list[float]]]
    squeeze_mean: dict[str, list[float]] = field(default_factory=dict)
    relative: bool = False

    def suppressed(self, consistency: float = 0.95) -> dict[str, list[int]]:
        """``{excite: channels with below ≥ consistency}`` (at least one channel kept)."""
        if not 0.0 < consistency <= 1.0:
            raise ValueError(f"consistency must be in (0, 1], got {consistency!r}")
        out = {}
        for name, st in self.blocks.items():
            chans = [c for c, b in enumerate(st["below"]) if b >= consistency]
            if len(chans) == len(st["below"]):  # keep the most open gate
                keep = max(range(len(chans)), key=lambda c: st["mean"][c])
                chans.remove(keep)
            if chans:
                out[name] = chans
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One row per (block, channel): the stats table as plain data."""
        return [{"block": self.se[n].name, "excite": n, "channel": c,
                 **{k: v[c] for k, v in st.items()}}
                for n, st in self.blocks.items() for c in range(len(st["mean"]))]

    def summary(self, consistency: float = 0.95) -> list[dict[str, Any]]:
        """One row per block: channels, mean gate, suppressed channels."""
        sup = self.suppressed(consistency)
        return [{"block": self.se[n].name, "excite": n, "channels": len(st["mean"]),
                 "mean_gate": sum(st["mean"]) / len(st["mean"]),
                 "suppressed": len(sup.get(n, []))} for n, st in self.blocks.items()]

    def table(self, consistency: float = 0.95) -> Any:
        """A ``rich`` table of :meth:`summary`."""
        from rich.table import Table

        t = Table(title=f"SE gates (threshold {self.threshold}, {self.samples} samples)")
        for col in ("block", "channels", "mean gate", "suppressed"):
            t.add_column(col)
        for r in self.summary(consistency):
            t.add_row(r["block"], str(r["channels"]), f"{r['mean_gate']:.3f}",
                      str(r["suppressed"]))
        return t

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "relative": self.relative, "samples": self.samples,
                "se": {k: asdict(v) for k, v in self.se.items()}, "blocks": self.blocks,
                "squeeze_mean": self.squeeze_mean}


def _require_se(blocks: list[SEBlock]) -> None:
    if not blocks:
        raise ValueError("se_gate: no squeeze-and-excitation gate found (a sigmoid or "
                         "hardsigmoid of shape (N, C, 1, ...) multiplying a feature map)")


def gate_stats(model: nn.Module, batches: Iterable[Any], threshold: float = 0.1,
               blocks: Sequence[SEBlock] | None = None, relative: bool = True) -> GateStats:
    """Run ``batches`` (model inputs) and summarize every gate channel (model unchanged);
    ``relative``: ``below`` tests ``g / max_c g`` (module docstring)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    batches = list(batches)
    if blocks is None:
        blocks = find_se_blocks(model, batches[0]) if batches else []
    squeeze_sums: dict[str, list] = {}
    modules = dict(model.named_modules())
    known = {b.excite: b for b in blocks}
    handles = []
    for b in (blocks or []):
        if b.squeeze is not None:
            handles.append(modules[b.squeeze].register_forward_pre_hook(
                _mean_hook(squeeze_sums, b.excite, modules[b.squeeze])))
    try:
        tape = run_traced(model, batches, record=True)
    finally:
        for h in handles:
            h.remove()
    se = known
    _require_se(list(se.values()))
    stats, samples = {}, 0
    for name in se:
        g = torch.cat(tape.values.get(name, []) or [torch.zeros(0, se[name].channels,
                                                                dtype=torch.float64)])
        samples = max(samples, g.shape[0])
        if g.shape[0] == 0:
            raise ValueError(f"se_gate: gate of {name!r} did not run on the batches")
        q = torch.quantile(g, torch.tensor(QUANTILES, dtype=g.dtype), dim=0)
        stats[name] = {"mean": g.mean(0).tolist(), "q05": q[0].tolist(), "q50": q[1].tolist(),
                       "q95": q[2].tolist(), "max": g.max(0).values.tolist(),
                       "below": (_relative(g) if relative else g).lt(threshold)
                       .double().mean(0).tolist()}
    means = {k: (s / n).tolist() for k, (s, n) in squeeze_sums.items()}
    return GateStats(threshold, samples, dict(se), stats, means, relative)


def _relative(g: torch.Tensor) -> torch.Tensor:
    top = g.max(dim=1, keepdim=True).values
    return torch.where(top > 0, g / top.clamp_min(torch.finfo(g.dtype).tiny), g)


def _mean_hook(sums: dict[str, list], key: str, layer: nn.Module) -> Any:
    def hook(_m: nn.Module, args: tuple) -> None:
        x = args[0].detach().to(torch.float64)
        dim = -1 if isinstance(layer, nn.Linear) else 1
        flat = x.movedim(dim, 0).reshape(x.shape[dim], -1)
        s, n = sums.get(key, (0.0, 0))
        sums[key] = [flat.sum(1) + s, n + flat.shape[1]]
    return hook


def score_gates(model: nn.Module, units: Sequence[SEBlock], example_inputs: Any,
                batches: Iterable[Any] | None = None, threshold: float = 0.1
                ) -> dict[str, float]:
    """``{"<excite>:<channel>": mean gate}`` (higher = keep)."""
    st = gate_stats(model, batches if batches is not None else [example_inputs], threshold,
                    units)
    return {f"{n}:{c}": v for n, s in st.blocks.items() for c, v in enumerate(s["mean"])}


@dataclass
class SEPlan:
    """A removal: ``removed[excite]`` = gate channels removed, ``channels`` the channel
    :class:`~prunekit.surgery.Plan` (dict) that did it, ``compensated`` the squeeze layers
    whose bias absorbed the mean of the removed inputs."""

    removed: dict[str, list[int]]
    channels: dict[str, Any]
    compensated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    version: int = PLAN_VERSION
    structure: str = "se_gate"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SEPlan:
        """Inverse of :meth:`to_dict`; :class:`~prunekit.surgery.PlanError` (a ValueError)
        naming the field on a foreign, newer or malformed plan."""
        d = check_header(data, "se_gate", PLAN_VERSION, ("removed", "channels", "compensated"),
                         ("notes",))
        return cls(v.mapping(d["removed"], "removed", v.indices),
                   check_surgery(d["channels"], "channels"),
                   v.strings(d["compensated"], "compensated"),
                   v.strings(d.get("notes", []), "notes"), d["version"])


def _parse_removal(removal: Mapping[str, Sequence[int]] | Iterable[str],
                   known: dict[str, SEBlock]) -> dict[str, list[int]]:
    """``{excite: channels}`` from a mapping or ``"<excite>:<channel>"`` names."""
    if isinstance(removal, str):
        raise TypeError("removal must be a mapping or a list of '<excite>:<channel>' names")
    if not isinstance(removal, Mapping):
        pairs: dict[str, list[int]] = {}
        for name in removal:
            excite, _, ch = str(name).rpartition(":")
            if not excite or not ch.isdigit():
                raise ValueError(f"removal: {name!r} is not '<excite layer>:<channel>'")
            pairs.setdefault(excite, []).append(int(ch))
        removal = pairs
    out = {}
    for excite, chans in removal.items():
        if excite not in known:
            raise ValueError(f"removal: {excite!r} is not the excite layer of an SE block; "
                             f"known: {sorted(known) or 'none'}")
        chans = sorted({int(c) for c in chans})
        n = known[excite].channels
        if chans and (chans[0] < 0 or chans[-1] >= n or len(chans) >= n):
            raise ValueError(f"removal[{excite!r}]: channels must lie in [0, {n}) and at "
                             "least one must stay")
        if chans:
            out[excite] = chans
    return out


def _group_channels(gs: GroupSet, excite: str) -> tuple[str, dict[int, int]]:
    """The group holding ``excite``'s output channels and {gate channel: group channel}."""
    for g in gs.groups:
        for m in g.members:
            if m.param == f"{excite}.weight" and m.dim == 0:
                return g.id, {idx[0]: c for c, idx in enumerate(m.index) if len(idx) == 1}
    raise ValueError(f"se_gate: the channels gated by {excite!r} are not a prunable group "
                     "(a barrier or an ignored module holds them)")


def remove_gate_channels(model: nn.Module, removal: Mapping[str, Sequence[int]] | Iterable[str],
                         example_inputs: Any, *, squeeze_mean: Mapping[str, Sequence[float]]
                         | None = None, blocks: Sequence[SEBlock] | None = None) -> SEPlan:
    """Remove gate channels (``{excite: channels}`` or ``"<excite>:<c>"`` names) from their
    coupled groups, in place, all or nothing. With ``squeeze_mean`` (from
    :class:`GateStats`) the squeeze biases are compensated (module docstring).

    Raises
    ------
    ValueError
        No SE block, unknown excite layer or bad channels; the model is untouched.
    SurgeryError
        Cutting or the forward check failed; the model was restored bit-identically.
    """
    found = list(blocks) if blocks is not None else find_se_blocks(model, example_inputs)
    _require_se(found)
    known = {b.excite: b for b in found}
    chosen = _parse_removal(removal, known)
    gs = build_groups(model, example_inputs)
    cut: dict[str, list[int]] = {}
    for excite, chans in chosen.items():
        gid, to_group = _group_channels(gs, excite)
        missing = [c for c in chans if c not in to_group]
        if missing:
            raise ValueError(f"se_gate: channels {missing} of {excite!r} are not in group {gid}")
        cut.setdefault(gid, []).extend(to_group[c] for c in chans)
    snap = Snapshot.take(model)
    try:
        compensated = _compensate(model, chosen, known, squeeze_mean or {})
        plan = remove_channels(model, gs, cut, example_inputs)
    except Exception as err:
        snap.restore()
        if isinstance(err, SurgeryError):
            raise
        raise SurgeryError(f"se_gate removal failed ({type(err).__name__}: {err}); the model "
                           "was restored") from err
    return SEPlan(chosen, plan.to_dict(), compensated, list(plan.notes))


@torch.no_grad()
def _compensate(model: nn.Module, chosen: dict[str, list[int]], known: dict[str, SEBlock],
                means: Mapping[str, Sequence[float]]) -> list[str]:
    done = []
    for excite, chans in chosen.items():
        sq = known[excite].squeeze
        if sq is None or excite not in means:
            continue
        layer = model.get_submodule(sq)
        if getattr(layer, "bias", None) is None:
            continue
        w = layer.weight.detach()
        w2 = w.reshape(w.shape[0], w.shape[1], -1).sum(-1)  # 1x1 conv: the only tap
        mu = torch.as_tensor([means[excite][c] for c in chans], dtype=w.dtype, device=w.device)
        layer.bias.data = layer.bias.data + w2[:, chans] @ mu
        done.append(sq)
    return done


@dataclass
class SEResult:
    """What :func:`prune_se` did: the model (changed in place), the plan, the stats."""

    model: nn.Module
    plan: SEPlan
    stats: GateStats


def prune_se(model: nn.Module, example_inputs: Any, *, batches: Iterable[Any] | None = None,
             threshold: float = 0.1, consistency: float = 0.95, compensate: bool = True,
             ratio: float | None = None, relative: bool = True) -> SEResult:
    """Gate statistics on ``batches`` (default: ``example_inputs``), then remove the
    consistently suppressed channels (``P(g < threshold) ≥ consistency``; with
    ``relative``, ``g / max_c g`` is tested), or, with
    ``ratio``, that fraction of each block's channels with the lowest mean gate."""
    blocks = find_se_blocks(model, example_inputs)
    _require_se(blocks)
    data = list(batches) if batches is not None else [example_inputs]
    stats = gate_stats(model, data, threshold, blocks, relative)
    if ratio is not None:
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        chosen = {n: sorted(range(len(s["mean"])), key=lambda c, s=s: s["mean"][c])
                  [:round(ratio * len(s["mean"]))] for n, s in stats.blocks.items()}
        chosen = {n: c for n, c in chosen.items() if c}
    else:
        chosen = stats.suppressed(consistency)
    plan = remove_gate_channels(model, chosen, example_inputs, blocks=blocks,
                                squeeze_mean=stats.squeeze_mean if compensate else None)
    return SEResult(model, plan, stats)


def apply_se_plan(model: nn.Module, plan: SEPlan | dict, example_inputs: Any = None) -> SEPlan:
    """Replay a plan on a freshly built model (the channel cuts; weights come on load)."""
    if isinstance(plan, dict):
        plan = SEPlan.from_dict(plan)
    apply_plan(model, Plan.from_dict(plan.channels), example_inputs)
    return plan


def se_groups(model: nn.Module, example_inputs: Any) -> list[Any]:
    """The coupled channel groups that SE gates act on (for proximal group-lasso training
    of the gated channels; remove the zero ones with :func:`remove_gate_channels` or
    ``ProximalGroupLasso.finalize``, both cut the same groups)."""
    blocks = find_se_blocks(model, example_inputs)
    _require_se(blocks)
    gs = build_groups(model, example_inputs)
    ids = {_group_channels(gs, b.excite)[0] for b in blocks}
    return [g for g in gs.groups if g.id in ids]


SE_GATE = register(Structure(
    "se_gate", find=find_se_blocks, score=score_gates, remove=remove_gate_channels,
    prune=prune_se, apply_plan=apply_se_plan, groups=se_groups))
