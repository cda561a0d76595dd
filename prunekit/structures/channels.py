"""Channels as a registered structure: trace, score, choose, cut (and re-fit) in one call.

``prunekit.prune(model, x, ratio=...)`` is :func:`prune_channels`; so is the
``"channels"`` step of ``structures=[...]``. The units are the coupled channel groups of
:func:`prunekit.graph.build_groups` (every parameter slice that must go with a channel).

Vocabulary (the same everywhere in prunekit): ``ratio`` (like ``sparsity``) is a fraction
**removed** — here of every group's channels, or of all channels together with
``global_ranking``; ``target_macs`` (like every ``target_*`` and ``Budget.fraction``) is
what is **kept** — here the fraction of the dense model's MACs. A layer whose input and
output groups both lose half their channels keeps a quarter of its MACs, so ``ratio=0.5``
typically removes about 3/4 of a plain CNN's MACs; ``target_macs`` finds the channel ratio
that reaches it by bisection on real MAC counts of the cut model.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from prunekit.graph import GroupSet, build_groups
from prunekit.result import PruneResult
from prunekit.structures.registry import Structure, register
from prunekit.surgery import Plan, apply_plan, remove_channels
from prunekit.surgery.isolate import cut_or_leave_whole
from prunekit.surgery.state import Snapshot, transaction


def prune_channels(model: nn.Module, example_inputs: Any, *, ratio: float | None = None,
                   target_macs: float | None = None, importance: Any = "l2",
                   ignore: Iterable[Any] = (), round_to: int = 1,
                   global_ranking: bool = False, min_keep: int = 1, max_ratio: float = 1.0,
                   calibration: Any = None, reconstruct: Any = False,
                   configs: str = "strict", progress: bool | None = None) -> PruneResult:
    """Remove channels from every prunable group of ``model`` (in place); the options are
    those of :func:`prunekit.prune` (validated there). Groups whose cut fails, changes
    values or leaves a config that cannot describe the model are left whole and named
    in ``skipped``. The cut and the re-fit happen together or not at all."""
    from prunekit.measure import count_macs, count_params
    from prunekit.progress import stage

    recon = _reconstruct_config(reconstruct, calibration, bool(progress))
    with stage("tracing the model (coupled channel groups)", progress):
        gs = build_groups(model, example_inputs, ignore)
        macs0, params0 = count_macs(model, example_inputs), count_params(model)
    name = importance if isinstance(importance, str) else "custom"
    with stage(f"scoring channels ({name} importance)", progress):
        scores = _scores(model, gs, importance, calibration, example_inputs)
    opts = {"global_ranking": global_ranking, "min_keep": min_keep, "max_ratio": max_ratio,
            "round_to": round_to}
    bad: list[dict[str, Any]] = []
    if target_macs is not None:
        probe = _choose(gs, scores, 0.5, opts)
        snap = Snapshot.take(model)
        _, bad = cut_or_leave_whole(model, gs, probe, example_inputs, progress, configs)
        snap.restore()
        scores = {g: s for g, s in scores.items() if g not in {b["group"] for b in bad}}
        removal = _search(model, gs, scores, float(target_macs), macs0, example_inputs, opts,
                          progress)
    else:
        removal = _choose(gs, scores, float(ratio or 0.0), opts)
    dense = copy.deepcopy(model) if recon is not None else None  # reconstruction's reference
    with transaction(model):  # the cut and the re-fit, or neither
        plan, more = cut_or_leave_whole(model, gs, removal, example_inputs, progress,
                                        configs)
        layers = _reconstructed(dense, model, plan, calibration, recon)
    skipped = gs.skipped + bad + [b for b in more if b not in bad]
    notes = list(getattr(calibration, "notes", []) or [])
    return PruneResult(model, plan, skipped, macs0, count_macs(model, example_inputs),
                       params0, count_params(model), gs, notes=notes, plans=[plan],
                       reconstruction=layers)


# ------------------------------------------------------------------ choose
def _scores(model: nn.Module, gs: GroupSet, importance: Any, ctx: Any, x: Any) -> dict:
    from prunekit.importance import ImportanceContext, score_groups

    groups = [g for g in gs.groups if g.prunable]
    return score_groups(model, groups, importance, ctx or ImportanceContext(example_inputs=x))


def _keep_members(gs: GroupSet, removal: dict[str, list[int]],
                  scores: Mapping[str, torch.Tensor]) -> dict[str, list[int]]:
    """Give back the best channel of any member that would lose all its indices."""
    groups = gs.by_id()
    out = {}
    for gid, chans in removal.items():
        gone = set(chans)
        for m in groups[gid].members:
            present = [c for c, idx in enumerate(m.index) if idx]
            if present and all(c in gone for c in present):
                gone.discard(max(present, key=lambda c: float(scores[gid][c])))
        out[gid] = sorted(gone)
    return out


def _choose(gs: GroupSet, scores: dict, ratio: float, opts: dict) -> dict[str, list[int]]:
    from prunekit.importance import rank_channels

    removal = rank_channels(scores, ratio=ratio, **opts)
    return _keep_members(gs, {k: v for k, v in removal.items() if v}, scores)


def _macs_at(model: nn.Module, gs: GroupSet, removal: dict, x: Any) -> int:
    from prunekit.measure import count_macs

    snap = Snapshot.take(model)
    try:
        remove_channels(model, gs, removal, x, check=False)
        return count_macs(model, x)
    finally:
        snap.restore()


def _search(model: nn.Module, gs: GroupSet, scores: dict, target: float, macs0: int,
            x: Any, opts: dict, progress: bool | None = False) -> dict[str, list[int]]:
    """Smallest channel ratio whose cut model has at most ``target · macs0`` MACs."""
    from prunekit.progress import track

    hi = 0.999
    best = _choose(gs, scores, hi, opts)
    reach = _macs_at(model, gs, best, x)
    if reach > target * macs0:
        raise ValueError(f"target_macs={target} is unreachable: removing every prunable "
                         f"channel allowed keeps {reach / macs0:.3f} of the MACs "
                         f"({len(gs.skipped)} barrier(s), see skipped)")
    lo = 0.0
    for _ in track(list(range(14)), "searching the MAC target", progress):
        mid = (lo + hi) / 2
        cand = _choose(gs, scores, mid, opts)
        if _macs_at(model, gs, cand, x) <= target * macs0:
            hi, best = mid, cand
        else:
            lo = mid
    return best


# ------------------------------------------------------------------ re-fit
def _reconstruct_config(value: Any, calibration: Any, progress: bool) -> Any:
    """Validate ``reconstruct=``: a ReconstructConfig or None; needs calibration batches."""
    from dataclasses import replace

    from prunekit.importance import ImportanceContext
    from prunekit.reconstruct import ReconstructConfig

    cfg = ReconstructConfig.of(value)
    if cfg is None:
        return None
    if not isinstance(calibration, ImportanceContext) or calibration.batches is None:
        raise ValueError("reconstruct needs calibration data: pass calibration="
                         "ImportanceContext(batches=...) with a few hundred samples or more")
    return replace(cfg, progress=True) if progress else cfg


def _reconstructed(dense: nn.Module | None, model: nn.Module, plan: Plan, calibration: Any,
                   recon: Any) -> list[dict[str, Any]]:
    """Re-fit ``model`` after the cut to the dense ``dense`` (nothing without ``recon``)."""
    if dense is None:
        return []
    from prunekit.reconstruct import reconstruct

    return [r.to_dict() for r in reconstruct(dense, model, plan, calibration, recon)]


# ------------------------------------------------------------------ the structure's verbs
def find_channel_groups(model: nn.Module, example_inputs: Any, ignore: Iterable[Any] = ()
                        ) -> list[Any]:
    """The prunable coupled channel groups of ``model`` (its units)."""
    return [g for g in build_groups(model, example_inputs, ignore).groups if g.prunable]


def score_channel_groups(model: nn.Module, groups: list[Any], example_inputs: Any,
                         importance: Any = "l2", calibration: Any = None) -> dict:
    """``{group id: per-channel scores}``, higher means keep."""
    from prunekit.importance import ImportanceContext, score_groups

    return score_groups(model, groups, importance,
                        calibration or ImportanceContext(example_inputs=example_inputs))


def remove_channel_indices(model: nn.Module, removal: Mapping[str, list[int]],
                           example_inputs: Any) -> Plan:
    """Cut ``{group id: channel indices}`` (all or nothing, checked by value)."""
    return remove_channels(model, build_groups(model, example_inputs), dict(removal),
                           example_inputs)


CHANNELS = register(Structure("channels", find=find_channel_groups,
                              score=score_channel_groups, remove=remove_channel_indices,
                              prune=prune_channels, apply_plan=apply_plan,
                              groups=find_channel_groups))
