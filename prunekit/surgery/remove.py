"""Physically remove channels, all or nothing.

:func:`remove_channels` turns ``{group_id: channels}`` into index cuts per tensor, cuts
them in place, fixes module attributes with the handler registry, runs a forward check
and returns a :class:`~prunekit.surgery.plan.Plan`. On *any* failure the model is
restored from a snapshot (its state_dict is bit-identical to before) and a
:class:`SurgeryError` names the module and op that failed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from prunekit.graph.trace import call_model, iter_tensors
from prunekit.graph.types import GroupSet
from prunekit.surgery import hf_config, known  # noqa: F401  (known: registers handlers)
from prunekit.surgery.handlers import Ctx, lookup
from prunekit.surgery.plan import Cut, Plan
from prunekit.surgery.state import Snapshot, apply_cut, tensor_owners

_SIMPLE = (int, float, bool, str, type(None))


class SurgeryError(RuntimeError):
    """A cut failed; the model was restored. ``module`` and ``op`` say where."""

    def __init__(self, message: str, module: str = "", op: str = "") -> None:
        super().__init__(message)
        self.module = module
        self.op = op


def _check_removal(gs: GroupSet, removal: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    if not isinstance(removal, Mapping):
        raise TypeError(f"removal must be a mapping group_id -> channels, got "
                        f"{type(removal).__name__}")
    groups = gs.by_id()
    out = {}
    for gid, channels in removal.items():
        g = groups.get(gid)
        if g is None:
            raise ValueError(f"removal: unknown group id {gid!r}")
        chans = sorted({int(c) for c in channels})
        if not chans:
            continue
        if chans[0] < 0 or chans[-1] >= g.size:
            raise ValueError(f"removal[{gid!r}]: channels must lie in [0, {g.size})")
        if len(chans) >= g.size:
            raise ValueError(f"removal[{gid!r}]: cannot remove all {g.size} channels")
        out[gid] = chans
    return out


def plan_cuts(gs: GroupSet, removal: dict[str, list[int]], model: nn.Module) -> list[Cut]:
    """Index cuts per (tensor, dim) for a removal, merged over groups."""
    groups = gs.by_id()
    owners = tensor_owners(model)
    merged: dict[tuple[str, int], set[int]] = {}
    for gid, chans in removal.items():
        for m in groups[gid].members:
            idx = merged.setdefault((m.param, m.dim), set())
            for c in chans:
                idx.update(m.index[c])
    cuts = []
    for (name, dim), idx in merged.items():
        if idx:
            kind, obj = owners[name]
            t = obj if kind == "param" else obj[0][0]._buffers[obj[0][1]]
            if len(idx) >= t.shape[dim]:
                raise ValueError(f"removal would leave {name!r} with no index along dim {dim}; "
                                 "keep at least one channel of every member")
            cuts.append(Cut(name, dim, int(t.shape[dim]), sorted(idx)))
    return cuts


def _sizes(gs: GroupSet, removal: dict[str, list[int]]) -> dict[str, dict[str, tuple]]:
    gone = {(gid, c) for gid, chans in removal.items() for c in chans}
    return {module: {attr: tuple(sum(1 for u in dim if u not in gone) for dim in dims)
                     for attr, dims in attrs.items()}
            for module, attrs in gs.shape_attrs.items()}


def _fix_attributes(model: nn.Module, changed: set[str], snap: Snapshot,
                    sizes: dict[str, dict[str, tuple]]) -> tuple[dict, dict]:
    """Run handlers bottom-up on changed modules and their ancestors; attr diffs + votes."""
    names = [n for n, _ in model.named_modules()]
    touched = {n for n in names if any(c == n or c.startswith(n + ".") or n == ""
                                       for c in changed)}
    touched |= {n for n in sizes if n in names}
    mods = dict(model.named_modules())
    votes: dict[str, set] = {}
    attrs: dict[str, dict[str, Any]] = {}
    for name in sorted(touched, key=lambda n: -n.count(".") - (n != "")):
        m = mods[name]
        handler = lookup(m)
        if handler is None:
            continue
        ctx = Ctx(old=snap.attrs[m], sizes=sizes.get(name, {}))
        for field, value in (handler(m, ctx) or {}).items():
            votes.setdefault(field, set()).add(value)
        diff = {k: _plain(v) for k, v in m.__dict__.items()
                if k in snap.attrs[m] and isinstance(v, (*_SIMPLE, tuple, list))
                and v != snap.attrs[m][k]}
        if diff:
            attrs[name] = diff
    return attrs, votes


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _set_config(model: nn.Module, votes: dict[str, set], plan: Plan,
                gs: GroupSet | None) -> list[str]:
    """Hugging Face configs solved from the cut modules (:mod:`.hf_config`; handler votes
    are not needed). With ``gs`` (strict, checked cuts), a cut that no config can describe
    fails like a forward check (prune() leaves such groups whole, named); anything else
    that does not rebuild goes to the notes (returned, to warn once the cut stands)."""
    movable = None if gs is None else {(m.param, m.dim) for g in gs.groups if g.prunable
                                       for m in g.members}
    update = hf_config.update_configs(model, movable)
    if update.failed:
        raise SurgeryError(*update.failed[0], "config")
    plan.config.update(update.values)
    plan.notes.extend(update.notes)
    return update.notes


class _LastOp(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.op = ""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.op = getattr(func, "__name__", str(func))
        return func(*args, **(kwargs or {}))


def forward_check(model: nn.Module, example_inputs: Any,
                  expected: list[tuple[int, ...]] | None) -> None:
    """Run the model (eval, no_grad); raise SurgeryError naming module and op on failure
    or when output shapes differ from ``expected``."""
    stack: list[str] = []
    handles = []
    def push(_m: nn.Module, _a: Any, name: str) -> None:
        stack.append(name)

    def pop(_m: nn.Module, _a: Any, _o: Any) -> None:
        stack.pop()

    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(functools.partial(push, name=name)))
        handles.append(m.register_forward_hook(pop))
    modes = {m: m.training for m in model.modules()}
    last = _LastOp()
    try:
        model.eval()
        with torch.no_grad(), last:
            out = call_model(model, example_inputs)
    except Exception as err:
        module = stack[-1] if stack else ""
        kind = type(dict(model.named_modules())[module]).__name__
        raise SurgeryError(f"forward check failed in module '{module}' ({kind}) at op "
                           f"'{last.op}': {type(err).__name__}: {err}", module, last.op) from err
    finally:
        for h in handles:
            h.remove()
        for m, flag in modes.items():
            m.training = flag
    shapes = [tuple(t.shape) for t in iter_tensors(out)]
    if expected is not None and shapes != [tuple(s) for s in expected]:
        raise SurgeryError(f"forward check: output shapes changed from {expected} to {shapes}",
                           "", "output")


def _cut_all(model: nn.Module, cuts: list[Cut]) -> None:
    """Apply index cuts in order, checking each tensor's size first."""
    owners = tensor_owners(model)
    for cut in cuts:
        if cut.param not in owners:
            raise ValueError(f"plan cuts unknown parameter or buffer {cut.param!r}")
        kind, obj = owners[cut.param]
        t = obj if kind == "param" else obj[0][0]._buffers[obj[0][1]]
        if cut.dim >= t.ndim or t.shape[cut.dim] != cut.size:
            raise ValueError(f"plan expects {cut.param!r} to have size {cut.size} along dim "
                             f"{cut.dim}, found shape {tuple(t.shape)}")
        apply_cut(owners, cut.param, cut.dim, cut.removed)


def _apply(model: nn.Module, cuts: list[Cut], snap: Snapshot,
           sizes: dict[str, dict[str, tuple]]) -> tuple[dict, dict]:
    _cut_all(model, cuts)
    return _fix_attributes(model, _holders(model, {c.param for c in cuts}), snap, sizes)


def _holders(model: nn.Module, names: set[str]) -> set[str]:
    """Every module that holds one of the named tensors (tied weights: all holders)."""
    wanted = {id(t) for n, t in (*model.named_parameters(), *model.named_buffers())
              if n in names}
    return {mname for mname, m in model.named_modules()
            for t in (*m._parameters.values(), *m._buffers.values())
            if t is not None and id(t) in wanted}


def remove_channels(
    model: nn.Module,
    group_set: GroupSet,
    removal: Mapping[str, Sequence[int]],
    example_inputs: Any,
    check: bool = True,
    configs: str = "warn",
) -> Plan:
    """Remove channels of groups in place, all or nothing; the :class:`Plan`.

    Parameters
    ----------
    model
        The model ``group_set`` was built from (unchanged since).
    group_set
        From :func:`prunekit.graph.build_groups`.
    removal
        ``{group_id: channel indices to remove}``; each group keeps at least one channel.
    example_inputs
        Inputs for the forward check after cutting (as for ``build_groups``).
    check
        Run the forward check (output shapes must be unchanged). Keep it on.
    configs
        Hugging Face configs are solved from the cut model either way
        (:mod:`prunekit.surgery.hf_config`); where one cannot describe it, ``"warn"``
        notes it in the plan and raises a ``ConfigWarning``, ``"strict"`` (what
        ``prunekit.prune`` uses) fails a checked cut that no further cut could make
        describable, like a failed forward check.

    Raises
    ------
    ValueError, TypeError
        On a bad ``removal`` (model untouched).
    SurgeryError
        When cutting or the forward check fails; the model is restored bit-identically.
    """
    if configs not in ("warn", "strict"):
        raise ValueError(f"configs must be 'warn' or 'strict', got {configs!r}")
    chosen = _check_removal(group_set, removal)
    plan = Plan(groups=chosen)
    if not chosen:
        return plan
    plan.cuts = plan_cuts(group_set, chosen, model)
    snap = Snapshot.take(model)
    try:
        plan.attrs, votes = _apply(model, plan.cuts, snap, _sizes(group_set, chosen))
        config_notes = _set_config(model, votes, plan,
                                   group_set if check and configs == "strict" else None)
        if check:
            forward_check(model, example_inputs, group_set.output_shapes)
    except SurgeryError:
        snap.restore()
        raise
    except Exception as err:
        snap.restore()
        raise SurgeryError(f"surgery failed: {type(err).__name__}: {err}") from err
    if check:
        hf_config.warn(config_notes)
    return plan


def apply_plan(model: nn.Module, plan: Plan, example_inputs: Any = None) -> nn.Module:
    """Replay ``plan`` on a model built like the original (no tracing needed).

    Cuts are applied in order, then the recorded attribute and config values are set.
    With ``example_inputs`` a forward check runs too. All or nothing.
    """
    snap = Snapshot.take(model)
    mods = dict(model.named_modules())
    try:
        _apply_recorded(model, plan, mods)
        if example_inputs is not None:
            forward_check(model, example_inputs, None)
    except Exception:
        snap.restore()
        raise
    return model


def _apply_recorded(model: nn.Module, plan: Plan, mods: dict[str, nn.Module]) -> None:
    _cut_all(model, plan.cuts)
    for name, attrs in plan.attrs.items():
        if name not in mods:
            raise ValueError(f"plan sets attributes of unknown module {name!r}")
        for attr, value in attrs.items():
            old = getattr(mods[name], attr, None)
            setattr(mods[name], attr, tuple(value) if isinstance(old, tuple) else value)
    hf_config.replay(model, plan.config)
