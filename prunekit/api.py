"""``prunekit.prune``: trace, score, choose, cut — one call.

Ratio semantics (read this once; the incumbents mix them up):

* ``ratio`` is a **channel ratio**: the fraction of channels removed from every prunable
  group (layer-wise), or over all groups together with ``global_ranking=True``. It is not
  a MAC or parameter fraction. A layer whose input *and* output groups both lose 50 % of
  their channels keeps 25 % of its MACs, so ``ratio=0.5`` typically removes about 3/4 of
  the MACs of a plain CNN and less of a model with many barriers.
* ``target_macs`` is a **MAC fraction to keep**: ``target_macs=0.5`` asks for a model
  with at most half the original multiply-accumulates (a 2x theoretical speedup). The
  channel ratio that reaches it is found by bisection on real MAC counts of the cut
  model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

import torch
from torch import nn

from prunekit.graph import GroupSet, build_groups
from prunekit.result import PruneResult, SpeedupResult
from prunekit.surgery import Plan, remove_channels
from prunekit.surgery.isolate import cut_or_leave_whole
from prunekit.surgery.state import Snapshot, transaction

__all__ = ["PruneResult", "SpeedupResult", "prune"]


def _check_args(model: Any, ratio: Any, target_macs: Any, round_to: Any, min_keep: Any,
                max_ratio: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if (ratio is None) == (target_macs is None):
        raise ValueError("give exactly one of ratio= (channel fraction to remove) or "
                         "target_macs= (MAC fraction to keep)")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, Real)
                              or not 0 <= ratio < 1):
        raise ValueError(f"ratio must be a number in [0, 1), got {ratio!r}")
    if target_macs is not None and (isinstance(target_macs, bool)
                                    or not isinstance(target_macs, Real)
                                    or not 0 < target_macs <= 1):
        raise ValueError(f"target_macs must be a fraction of the original MACs in (0, 1], "
                         f"got {target_macs!r}")
    for name, value in (("round_to", round_to), ("min_keep", min_keep)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, Real) or \
            not 0 < max_ratio <= 1:
        raise ValueError(f"max_ratio must be in (0, 1], got {max_ratio!r}")


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


def _steps(items: Iterable[Any], description: str, progress: bool | None) -> Iterable[Any]:
    from prunekit.progress import track

    return track(list(items), description, progress)


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
    hi = 0.999
    best = _choose(gs, scores, hi, opts)
    reach = _macs_at(model, gs, best, x)
    if reach > target * macs0:
        raise ValueError(f"target_macs={target} is unreachable: removing every prunable "
                         f"channel allowed keeps {reach / macs0:.3f} of the MACs "
                         f"({len(gs.skipped)} barrier(s), see skipped)")
    lo = 0.0
    for _ in _steps(range(14), "searching the MAC target", progress):
        mid = (lo + hi) / 2
        cand = _choose(gs, scores, mid, opts)
        if _macs_at(model, gs, cand, x) <= target * macs0:
            hi, best = mid, cand
        else:
            lo = mid
    return best


def prune(
    model: nn.Module,
    example_inputs: Any,
    ratio: float | None = None,
    target_macs: float | None = None,
    importance: Any = "l2",
    ignore: Iterable[Any] = (),
    round_to: int = 1,
    global_ranking: bool = False,
    min_keep: int = 1,
    max_ratio: float = 1.0,
    calibration: Any = None,
    progress: bool | None = None,
    target_speedup: float | None = None,
    device: str = "cpu",
    threads: int | None = 2,
    batch_size: int | None = None,
    structures: Sequence[str] | Mapping[str, Mapping[str, Any] | None] | None = None,
    prefer: str | None = None,
) -> PruneResult:
    """Structurally prune ``model`` in place and say exactly what was done.

    Parameters
    ----------
    model
        Any ``nn.Module`` (torchvision, timm, Hugging Face, your own).
    example_inputs
        A tensor (``model(x)``), tuple (``model(*x)``) or dict (``model(**x)``); used to
        trace, to check the cut model and to count MACs.
    ratio
        Channel ratio in [0, 1): fraction of every group's channels to remove (or of all
        channels with ``global_ranking``). See the module docstring: not a MAC ratio.
    target_macs
        MAC fraction to keep in (0, 1], e.g. 0.5 for half the MACs. Exclusive with ratio.
    importance
        Registered criterion name (``"l2"``, ``"l1"``, ``"bn_scale"``, ``"taylor"``,
        ``"fisher"``, ``"activation_mean"``, ``"apoz"``, ``"random"``), a
        ``{name: weight}`` mix or a function ``fn(model, group, ctx) -> scores``.
    ignore
        Module names or modules whose parameters keep their size.
    round_to
        Kept widths are multiples of this (tile sizes of the hardware).
    global_ranking
        One threshold across groups instead of the same ratio per group.
    min_keep, max_ratio
        Every group keeps at least ``min_keep`` channels and loses at most ``max_ratio``.
    calibration
        An :class:`prunekit.importance.ImportanceContext` with batches / loss for
        data-driven criteria (default: the example inputs).
    progress
        Progress on stderr: tracing, scoring, the MAC-target search, the measured speed
        search and whether ``target_speedup`` was met. ``None`` (default): shown when stderr
        is a terminal (or as an enclosing :func:`prunekit.progress.showing` says);
        ``False``: silent; ``True``: always.
    target_speedup, device, threads, batch_size
        Prune until the model is *measured* this many times faster on ``device``
        (``threads`` CPU threads, timed at ``batch_size``); exclusive with ratio and
        target_macs. See :func:`prunekit.hardware.prune_to_speedup`; what was measured
        is ``result.speedup`` (a :class:`~prunekit.result.SpeedupResult`: measured
        speedup, ``met``, ρ, every timed candidate).
    structures
        What to cut, in order: ``"channels"`` (the default, driven by ``ratio`` /
        ``target_macs``) and registered structures (:func:`prunekit.structures.available`:
        ``"depth"`` removes residual blocks / transformer layers, ...). A list uses each
        structure's defaults (a lone structure gets ``ratio`` as its unit fraction); a
        mapping gives options, e.g. ``{"depth": {"n_blocks": 2}, "channels": None}``.
        All or nothing over every step: if one fails, the model is put back as it was.
        With ``target_speedup``, ``structures=["depth", "channels"]`` measures a width plan
        and a depth plan on the device and applies the one that keeps the outputs closest
        among those meeting the target (:func:`prunekit.hardware.choose.prune_width_or_depth`).
    prefer
        Width or depth only: which candidate meeting the target to apply — ``"fidelity"``
        (default: outputs closest to the dense model's), ``"macs"`` (most MACs kept, the
        highest ρ; for random weights or unrepresentative inputs) or ``"speed"``.

    Returns
    -------
    PruneResult
        The same type for every mode; ``result.speedup`` is set with ``target_speedup``
        (``None`` otherwise) and ``result.structures`` holds the other structures' results.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, inputs that do not run, unknown ``ignore`` names or an
        unreachable ``target_macs``; the model is untouched.
    """
    from prunekit.measure import count_macs, count_params
    from prunekit.progress import stage, stages

    if target_speedup is not None:  # a typo or a missing GPU: ValueError, model untouched
        from prunekit.measure.devices import validate_device

        validate_device(device)
    if prefer is not None and (target_speedup is None or structures is None):
        raise ValueError("prefer applies to width or depth: give target_speedup and "
                         "structures=['depth', 'channels']")
    if structures is not None and target_speedup is not None:
        if isinstance(structures, str) or set(structures) != {"depth", "channels"}:
            raise ValueError("with target_speedup, structures must be ['depth', 'channels'] "
                             "(width or depth, chosen by measurement) or left out (width)")
        if ratio is not None or target_macs is not None:
            raise ValueError("target_speedup is exclusive with ratio and target_macs")
        from prunekit.hardware.choose import prune_width_or_depth

        with stages(progress) as say:
            result = prune_width_or_depth(model, example_inputs, target_speedup, device=device,
                                          threads=threads, batch_size=batch_size,
                                          importance=importance, ignore=ignore,
                                          round_to=None if round_to == 1 else round_to,
                                          min_keep=min_keep, calibration=calibration,
                                          progress=say, prefer=prefer or "fidelity")
            if say is not None:
                from prunekit.hardware.verdict import target_line

                say(f"chosen: {target_line(result)}")
            return result
    if structures is not None:
        return _prune_structures(model, example_inputs, _structure_steps(structures, ratio,
                                                                         target_macs),
                                 dict(ratio=ratio, target_macs=target_macs,
                                      importance=importance, ignore=ignore,
                                      round_to=round_to, global_ranking=global_ranking,
                                      min_keep=min_keep, max_ratio=max_ratio,
                                      calibration=calibration, progress=progress))
    if target_speedup is not None:
        if ratio is not None or target_macs is not None:
            raise ValueError("target_speedup is exclusive with ratio and target_macs")
        from prunekit.hardware.target import prune_to_speedup

        with stages(progress) as say:
            return prune_to_speedup(model, example_inputs, target_speedup, device=device,
                                    threads=threads, batch_size=batch_size,
                                    importance=importance, ignore=ignore,
                                    round_to=None if round_to == 1 else round_to,
                                    min_keep=min_keep, calibration=calibration, progress=say)
    _check_args(model, ratio, target_macs, round_to, min_keep, max_ratio)
    with stage("tracing the model (coupled channel groups)", progress):
        gs = build_groups(model, example_inputs, ignore)
        macs0, params0 = count_macs(model, example_inputs), count_params(model)
    with stage(f"scoring channels ({importance if isinstance(importance, str) else 'custom'}"
               " importance)", progress):
        scores = _scores(model, gs, importance, calibration, example_inputs)
    opts = {"global_ranking": global_ranking, "min_keep": min_keep, "max_ratio": max_ratio,
            "round_to": round_to}
    bad: list[dict[str, Any]] = []
    if target_macs is not None:
        probe = _choose(gs, scores, 0.5, opts)
        snap = Snapshot.take(model)
        _, bad = cut_or_leave_whole(model, gs, probe, example_inputs, progress)
        snap.restore()
        scores = {g: s for g, s in scores.items() if g not in {b["group"] for b in bad}}
        removal = _search(model, gs, scores, float(target_macs), macs0, example_inputs, opts,
                          progress)
    else:
        removal = _choose(gs, scores, float(ratio), opts)
    plan, more = cut_or_leave_whole(model, gs, removal, example_inputs, progress)
    skipped = gs.skipped + bad + [b for b in more if b not in bad]
    notes = list(getattr(calibration, "notes", []) or [])
    return PruneResult(model, plan, skipped, macs0, count_macs(model, example_inputs),
                       params0, count_params(model), gs, notes=notes, plans=[plan])


def _structure_steps(structures: Any, ratio: Any, target_macs: Any
                     ) -> list[tuple[str, dict[str, Any]]]:
    """Validate ``structures=``: ordered ``(name, options)``; ValueError names the bad one."""
    from prunekit import structures as registry

    if isinstance(structures, str):
        raise TypeError("structures must be a list of names or a {name: options} mapping, "
                        f"not the string {structures!r} (write [{structures!r}])")
    if isinstance(structures, Mapping):
        items = [(k, dict(v or {})) for k, v in structures.items()]
    else:
        items = [(k, {}) for k in structures]
    if not items:
        raise ValueError("structures is empty: name at least one of "
                         f"{['channels', *registry.available()]}")
    names = [k for k, _ in items]
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"structure names must be strings, got {name!r}")
        if name != "channels":
            registry.get(name)  # ValueError listing the known ones
    if len(set(names)) != len(names):
        raise ValueError(f"structures lists a structure twice: {names}")
    if "channels" in names:
        _check_args(nn.Module(), ratio, target_macs, 1, 1, 1.0)
    elif target_macs is not None:
        raise ValueError("target_macs= applies to 'channels', which structures does not list")
    out = []
    for name, opts in items:
        if name != "channels" and not opts:
            if ratio is None or "channels" in names:
                raise ValueError(f"structures: {name!r} needs options, e.g. "
                                 f"structures={{{name!r}: {{'ratio': 0.25}}}}")
            opts = {"ratio": ratio}
        out.append((name, opts))
    return out


def _prune_structures(model: nn.Module, x: Any, steps: list[tuple[str, dict[str, Any]]],
                      channel_args: dict[str, Any]) -> PruneResult:
    """Apply each step in order; restore the whole model if any step fails."""
    from prunekit import structures as registry
    from prunekit.measure import count_macs, count_params

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    macs0, params0 = count_macs(model, x), count_params(model)
    plans: list[Any] = []
    results: dict[str, Any] = {}
    channel: PruneResult | None = None
    with transaction(model, copy_values=True):  # a structure may fit weights in place
        for name, opts in steps:
            if name == "channels":
                channel = prune(model, x, **channel_args)
                plans.append(channel.plan)
            else:
                res = registry.get(name).prune(model, x, **opts)
                results[name] = res
                plans.append(getattr(res, "plan", res))
    return PruneResult(model, channel.plan if channel else Plan(),
                       channel.skipped if channel else [], macs0, count_macs(model, x),
                       params0, count_params(model), channel.groups if channel else None,
                       notes=channel.notes if channel else [], plans=plans,
                       structures=results)
