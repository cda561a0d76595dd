"""``prunekit.prune``: one call, one contract.

A call names **one target** and the options that apply to it; everything is validated
before anything is cut, and an option that does not apply is an error, never ignored:

* ``ratio`` or ``target_macs`` — cut channels (the registered ``"channels"`` structure,
  :mod:`prunekit.structures.channels`), or run the ``structures=[...]`` steps in order;
* ``target_speedup`` — prune until the model is *measured* that many times faster on a
  device (``device``, ``threads``, ``batch_size``: the device spec, only with this target).

Vocabulary, the same everywhere in prunekit: ``ratio`` and ``sparsity`` are fractions
**removed** (``ratio=0.3``: 30 % of every group's channels go); every ``target_*`` says
what is **kept** or reached (``target_macs=0.5``: half the MACs stay; ``target_speedup=2``:
twice as fast), as does a sparsity ``Budget(fraction=...)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Any

from torch import nn

from prunekit.result import PruneResult, SpeedupResult
from prunekit.surgery import Plan
from prunekit.surgery.state import transaction

__all__ = ["PruneResult", "SpeedupResult", "prune"]

#: options of the channel cut (``ratio`` / ``target_macs``, or a ``"channels"`` step)
CHANNEL_DEFAULTS: dict[str, Any] = {
    "importance": "l2", "ignore": (), "calibration": None, "round_to": 1,
    "global_ranking": False, "min_keep": 1, "max_ratio": 1.0, "reconstruct": False,
    "configs": "strict"}
#: options of a measured speed target; None defers to :func:`prune_to_speedup`'s defaults
SPEED_DEFAULTS: dict[str, Any] = {
    "importance": "l2", "ignore": (), "calibration": None, "round_to": None, "min_keep": 1,
    "max_ratio": None, "configs": "strict", "device": "cpu", "threads": 2,
    "batch_size": None, "prefer": None}
WIDTH_OR_DEPTH = {"depth", "channels"}


def prune(
    model: nn.Module,
    example_inputs: Any,
    ratio: float | None = None,
    target_macs: float | None = None,
    *,
    target_speedup: float | None = None,
    structures: Sequence[str] | Mapping[str, Mapping[str, Any] | None] | None = None,
    importance: Any = None,
    ignore: Iterable[Any] | None = None,
    calibration: Any = None,
    round_to: int | None = None,
    global_ranking: bool | None = None,
    min_keep: int | None = None,
    max_ratio: float | None = None,
    reconstruct: Any = None,
    configs: str | None = None,
    device: str | None = None,
    threads: int | None = None,
    batch_size: int | None = None,
    prefer: str | None = None,
    progress: bool | None = None,
) -> PruneResult:
    """Structurally prune ``model`` in place and say exactly what was done.

    Parameters
    ----------
    model
        Any ``nn.Module`` (torchvision, timm, Hugging Face, your own).
    example_inputs
        A tensor (``model(x)``), tuple (``model(*x)``) or dict (``model(**x)``); used to
        trace, to check the cut model by value and to count MACs.
    ratio
        Fraction of channels **removed**, in [0, 1): of every group (or of all channels
        with ``global_ranking``). Not a MAC fraction (see
        :mod:`prunekit.structures.channels`). A lone structure in ``structures`` takes it
        as its unit fraction.
    target_macs
        Fraction of the MACs **kept**, in (0, 1]; exclusive with ``ratio``.
    target_speedup
        Prune until the model is *measured* this many times faster (> 1) on ``device``
        (``threads`` CPU threads, timed at ``batch_size``); exclusive with ratio and
        target_macs. What was measured is ``result.speedup`` (measured speedup, ``met``,
        ρ, every timed candidate); see :func:`prunekit.hardware.prune_to_speedup`.
    structures
        What to cut, in order: ``"channels"`` and the other registered structures
        (:func:`prunekit.structures.available`: ``"depth"`` removes residual blocks /
        transformer layers, ...). A list uses each structure's defaults (a lone structure
        gets ``ratio``); a mapping gives options, checked against the structure's own
        ``prune`` signature, e.g. ``{"depth": {"n_blocks": 2}, "channels": None}``; the
        channel options below may also be given under ``"channels"``. All or nothing over
        every step. With ``target_speedup`` only ``["depth", "channels"]``: a width and
        a depth plan are measured and the one that keeps the outputs closest among those
        meeting the target is applied (:func:`prunekit.hardware.choose.prune_width_or_depth`).
    importance, ignore, calibration
        What to keep: a registered criterion (``"l2"`` default, ``"l1"``, ``"bn_scale"``,
        ``"taylor"``, ``"fisher"``, ``"obs"``, ...), a ``{name: weight}`` mix or
        ``fn(model, group, ctx) -> scores``; modules whose parameters keep their size; an
        :class:`prunekit.importance.ImportanceContext` with batches / loss for data-driven
        criteria (default: the example inputs).
    round_to
        Kept widths are multiples of this. Default 1 for ``ratio`` / ``target_macs``; with
        ``target_speedup`` the device's fast multiple, probed once and cached.
    global_ranking
        One threshold across groups instead of the same ratio per group (``ratio`` /
        ``target_macs`` only).
    min_keep, max_ratio
        Every group keeps at least ``min_keep`` channels (default 1) and loses at most
        ``max_ratio`` of them (default 1.0; 0.9 with ``target_speedup``).
    reconstruct
        Re-fit the layers after the cut to the dense model's outputs on ``calibration``
        (no gradient training): ``True``/``"ls"`` (damped least squares), ``"bias"``,
        ``"block"`` or a :class:`prunekit.reconstruct.ReconstructConfig`. Needs
        ``calibration`` with batches; not with ``target_speedup``. Per-layer errors
        before/after are in ``result.reconstruction``.
    configs
        Hugging Face models: ``"strict"`` (default) leaves whole, and names in ``skipped``,
        a group whose cut the model's config cannot describe (``Model(config)`` would not
        load the pruned weights; e.g. BERT heads, whose size is ``hidden_size /
        num_attention_heads``); ``"warn"`` cuts it anyway with a
        :class:`~prunekit.surgery.ConfigWarning` — the model is right and
        :func:`prunekit.save` / :func:`prunekit.load` round-trip it; ``from_pretrained``
        does not.
    device, threads, batch_size
        The device spec of ``target_speedup`` (default ``"cpu"``, 2 threads, the example
        batch); an error with any other target.
    prefer
        Width or depth only: which candidate meeting the target to apply — ``"fidelity"``
        (default: outputs closest to the dense model's), ``"macs"`` (most MACs kept) or
        ``"speed"``.
    progress
        Progress on stderr (tracing, scoring, searches, whether a speed target was met).
        ``None`` (default): when stderr is a terminal or an enclosing
        :func:`prunekit.progress.showing` says so.

    Returns
    -------
    PruneResult
        The same type for every target: ``plan``/``plans``, ``skipped`` (everything left
        whole, with the reason), MACs and parameters before and after, ``notes``;
        ``speedup`` with ``target_speedup``; ``structures`` the other structures' results.

    Raises
    ------
    TypeError, ValueError
        Bad or inapplicable arguments (the message names the argument), inputs that do
        not run, unknown ``ignore`` names or an unreachable target; the model is untouched.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    given = _given(importance=importance, ignore=ignore, calibration=calibration,
                   round_to=round_to, global_ranking=global_ranking, min_keep=min_keep,
                   max_ratio=max_ratio, reconstruct=reconstruct, configs=configs,
                   device=device, threads=threads, batch_size=batch_size, prefer=prefer)
    if target_speedup is not None:
        if ratio is not None or target_macs is not None:
            raise ValueError("target_speedup is exclusive with ratio and target_macs: give "
                             "one target")
        return _to_speedup(model, example_inputs, target_speedup, structures, given,
                           progress)
    speed = [k for k in ("device", "threads", "batch_size", "prefer") if k in given]
    if speed:
        raise ValueError(f"{speed[0]}= applies to target_speedup only (it says how the speed "
                         "is measured); ratio and target_macs count MACs")
    steps = _steps(structures, ratio, target_macs, given)
    if len(steps) == 1 and steps[0][0] == "channels":
        from prunekit.structures.channels import prune_channels

        return prune_channels(model, example_inputs, **steps[0][1], progress=progress)
    return _run_steps(model, example_inputs, steps, progress)


def _given(**options: Any) -> dict[str, Any]:
    """The options the caller set (None means "not given": the target's default)."""
    return {k: v for k, v in options.items() if v is not None}


# ------------------------------------------------------------------ typed checks
def _fraction(name: str, value: Any, low_open: bool, high_open: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, Real) and (
        (0 < value if low_open else 0 <= value) and (value < 1 if high_open else value <= 1))
    if not ok:
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _check_options(opts: Mapping[str, Any]) -> None:
    """Type and range of every option present (whichever target it belongs to)."""
    for name in ("round_to", "min_keep", "threads", "batch_size"):
        if opts.get(name) is not None:
            _positive_int(name, opts[name])
    if opts.get("max_ratio") is not None:
        _fraction("max_ratio", opts["max_ratio"], low_open=True, high_open=False)
    if "global_ranking" in opts and not isinstance(opts["global_ranking"], bool):
        raise ValueError(f"global_ranking must be True or False, got "
                         f"{opts['global_ranking']!r}")
    if opts.get("configs", "strict") not in ("strict", "warn"):
        raise ValueError(f"configs must be 'strict' or 'warn', got {opts['configs']!r}")
    if opts.get("prefer") not in (None, "fidelity", "macs", "speed"):
        raise ValueError(f"prefer must be 'fidelity', 'macs' or 'speed', got "
                         f"{opts['prefer']!r}")
    if isinstance(opts.get("ignore"), str):
        raise TypeError(f"ignore must be a list of module names or modules, not the string "
                        f"{opts['ignore']!r} (write [{opts['ignore']!r}])")
    if opts.get("device") is not None:
        from prunekit.measure.devices import validate_device

        validate_device(opts["device"])  # a typo or a missing GPU: ValueError


def _channel_target(ratio: Any, target_macs: Any) -> None:
    if (ratio is None) == (target_macs is None):
        raise ValueError("give exactly one of ratio= (channel fraction to remove) or "
                         "target_macs= (MAC fraction to keep)")
    if ratio is not None:
        _fraction("ratio", ratio, low_open=False, high_open=True)
    else:
        _fraction("target_macs", target_macs, low_open=True, high_open=False)


# ------------------------------------------------------------------ measured speed
def _to_speedup(model: nn.Module, x: Any, target: float, structures: Any,
                given: dict[str, Any], progress: bool | None) -> PruneResult:
    """Width (``prune_to_speedup``) or width-or-depth, measured on the device."""
    for name in ("global_ranking", "reconstruct"):
        if name in given:
            raise ValueError(f"{name}= does not apply to target_speedup (give ratio= or "
                             "target_macs= to use it)")
    _check_options(given)
    width_or_depth = structures is not None
    if width_or_depth and (isinstance(structures, str) or set(structures) != WIDTH_OR_DEPTH
                           or (isinstance(structures, Mapping)
                               and any(structures.values()))):
        raise ValueError("with target_speedup, structures must be ['depth', 'channels'] "
                         "(width or depth, chosen by measurement) or left out (width)")
    if "prefer" in given and not width_or_depth:
        raise ValueError("prefer= applies to width or depth: give target_speedup and "
                         "structures=['depth', 'channels']")
    opts = {**SPEED_DEFAULTS, **given}
    from prunekit.progress import stages

    with stages(progress) as say:
        if not width_or_depth:
            from prunekit.hardware.target import prune_to_speedup

            del opts["prefer"]
            kept = {k: v for k, v in opts.items() if not (k == "max_ratio" and v is None)}
            return prune_to_speedup(model, x, target, progress=say, **kept)
        from prunekit.hardware.choose import prune_width_or_depth
        from prunekit.hardware.verdict import target_line

        opts["prefer"] = opts["prefer"] or "fidelity"
        if opts["max_ratio"] is None:
            del opts["max_ratio"]
        result = prune_width_or_depth(model, x, target, progress=say, **opts)
        if say is not None:
            say(f"chosen: {target_line(result)}")
        return result


# ------------------------------------------------------------------ steps
def _steps(structures: Any, ratio: Any, target_macs: Any, given: dict[str, Any]
           ) -> list[tuple[str, dict[str, Any]]]:
    """Validated ``(structure name, options)`` in order; nothing runs before all pass."""
    from prunekit import structures as registry

    items = _items(structures)
    names = [name for name, _ in items]
    for name in names:
        registry.get(name)  # ValueError listing the known ones
    if "channels" not in names:
        if target_macs is not None:
            raise ValueError("target_macs= applies to 'channels', which structures does "
                             "not list")
        extra = sorted(given)
        if extra:
            raise ValueError(f"{extra[0]}= applies to 'channels', which structures does not "
                             f"list (give a structure's options in structures={{name: {{...}}}})")
    out = []
    for name, opts in items:
        if name == "channels":
            out.append((name, _channel_options(opts, ratio, target_macs, given)))
            continue
        if not opts:
            if ratio is None or "channels" in names:
                raise ValueError(f"structures: {name!r} needs options, e.g. "
                                 f"structures={{{name!r}: {{'ratio': 0.25}}}}")
            opts = {"ratio": ratio}
        _check_structure_options(name, registry.get(name).prune, opts)
        out.append((name, opts))
    return out


def _items(structures: Any) -> list[tuple[str, dict[str, Any]]]:
    if structures is None:
        return [("channels", {})]
    if isinstance(structures, str):
        raise TypeError("structures must be a list of names or a {name: options} mapping, "
                        f"not the string {structures!r} (write [{structures!r}])")
    if isinstance(structures, Mapping):
        items = []
        for k, v in structures.items():
            if v is not None and not isinstance(v, Mapping):
                raise TypeError(f"structures[{k!r}] must be a mapping of options or None, "
                                f"got {type(v).__name__}")
            items.append((k, dict(v or {})))
    else:
        items = [(k, {}) for k in structures]
    if not items:
        from prunekit import structures as registry

        raise ValueError(f"structures is empty: name at least one of {registry.available()}")
    names = [k for k, _ in items]
    bad = [k for k in names if not isinstance(k, str)]
    if bad:
        raise TypeError(f"structure names must be strings, got {bad[0]!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"structures lists a structure twice: {names}")
    return items


def _channel_options(opts: dict[str, Any], ratio: Any, target_macs: Any,
                     given: dict[str, Any]) -> dict[str, Any]:
    """The channel step's options: top-level ones and those under ``"channels"`` (not both)."""
    allowed = {*CHANNEL_DEFAULTS, "ratio", "target_macs"}
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise ValueError(f"structures['channels'] has no option {unknown[0]!r}; its options: "
                         f"{sorted(allowed)}")
    top = {**given, **_given(ratio=ratio, target_macs=target_macs)}
    both = sorted(set(opts) & set(top))
    if both:
        raise ValueError(f"{both[0]}= is given twice: as an argument and under "
                         "structures['channels']")
    merged = {**CHANNEL_DEFAULTS, **top, **opts}
    _channel_target(merged.get("ratio"), merged.get("target_macs"))
    _check_options(merged)
    return merged


def _check_structure_options(name: str, fn: Any, opts: Mapping[str, Any]) -> None:
    """Every option is a keyword of the structure's ``prune`` (else ValueError naming it)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in list(params.items())[2:]
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in opts:
        if key not in accepted:
            raise ValueError(f"structure {name!r} takes no option {key!r}; its options: "
                             f"{', '.join(accepted)}")


def _run_steps(model: nn.Module, x: Any, steps: list[tuple[str, dict[str, Any]]],
               progress: bool | None) -> PruneResult:
    """Apply each step in order; restore the whole model if any step fails."""
    from prunekit import structures as registry
    from prunekit.measure import count_macs, count_params

    macs0, params0 = count_macs(model, x), count_params(model)
    plans: list[Any] = []
    results: dict[str, Any] = {}
    channel: PruneResult | None = None
    with transaction(model, copy_values=True):  # a structure may fit weights in place
        for name, opts in steps:
            if name == "channels":
                channel = registry.get(name).prune(model, x, **opts, progress=progress)
                plans.append(channel.plan)
            else:
                res = registry.get(name).prune(model, x, **opts)
                results[name] = res
                plans.append(getattr(res, "plan", res))
    return PruneResult(model, channel.plan if channel else Plan(),
                       channel.skipped if channel else [], macs0, count_macs(model, x),
                       params0, count_params(model), channel.groups if channel else None,
                       notes=channel.notes if channel else [], plans=plans,
                       structures=results,
                       reconstruction=channel.reconstruction if channel else [])
