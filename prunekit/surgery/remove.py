"""Physically remove channels, all or nothing.

:func:`remove_channels` turns ``{group_id: channels}`` into index cuts per tensor, cuts
them in place, fixes module attributes with the handler registry, runs a forward check
and returns a :class:`~prunekit.surgery.plan.Plan`. On *any* failure the model is
restored from a snapshot (its state_dict is bit-identical to before) and a
:class:`SurgeryError` names the module and op that failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from prunekit.graph.oplog import ModuleCall, OpRecord, iter_tensors, run
from prunekit.graph.types import GroupSet
from prunekit.graph.width_ops import EmulationError
from prunekit.layout import compile_member
from prunekit.surgery import hf_config, known  # noqa: F401  (known: registers handlers)
from prunekit.surgery.allowed import check_replay
from prunekit.surgery.handlers import Ctx, lookup
from prunekit.surgery.plan import Cut, Plan
from prunekit.surgery.state import Snapshot, apply_cut, tensor_owners
from prunekit.surgery.value_check import compare, reference_outputs

_SIMPLE = (int, float, bool, str, type(None))


class SurgeryError(RuntimeError):
    """A cut failed; the model was restored. ``module`` and ``op`` say where."""

    def __init__(self, message: str, module: str = "", op: str = "") -> None:
        super().__init__(message)
        self.module = module
        self.op = op


class ValueCheckError(SurgeryError):
    """The cut model ran with the right shapes but computed something else than the
    original with the removed channels zeroed (or that could not be verified); the model
    was restored."""


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
            merged.setdefault((m.param, m.dim), set()).update(
                compile_member(m).of(chans).tolist())
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


class _Where:
    """Observer of the checked pass: the innermost module that failed, the last op."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.failed: str | None = None
        self.last_op = ""

    def enter(self, call: ModuleCall) -> None:
        self.stack.append(call.name)

    def exit(self, call: ModuleCall) -> None:
        if call.failed and self.failed is None:
            self.failed = call.name
        if self.stack and self.stack[-1] == call.name:
            self.stack.pop()

    def op(self, rec: OpRecord) -> None:
        pass

    def dispatch(self, index: int, func: Any, args: tuple, kwargs: dict) -> Any:
        self.last_op = getattr(func, "__name__", str(func))
        return func(*args, **kwargs)


def forward_check(model: nn.Module, example_inputs: Any,
                  expected: list[tuple[int, ...]] | None) -> Any:
    """Run the model (eval, no_grad) and return its outputs; raise SurgeryError naming
    module and op on failure or when output shapes differ from ``expected``."""
    where = _Where()
    try:
        out = run(model, example_inputs, [where], dispatch=where.dispatch)
    except Exception as err:
        module = where.failed if where.failed is not None else ""
        kind = type(dict(model.named_modules())[module]).__name__
        raise SurgeryError(f"forward check failed in module '{module}' ({kind}) at op "
                           f"'{where.last_op}': {type(err).__name__}: {err}", module,
                           where.last_op) from err
    shapes = [tuple(t.shape) for t in iter_tensors(out)]
    if expected is not None and shapes != [tuple(s) for s in expected]:
        raise SurgeryError(f"forward check: output shapes changed from {expected} to {shapes}",
                           "", "output")
    return out


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
    values: bool = True,
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
    values
        With ``check``: also compare the outputs' values with the original's whose
        removed slices are zeroed (:mod:`prunekit.surgery.value_check`; one more forward
        pass). Keep it on: it is what catches a cut that reinterprets a layout.
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
        :class:`ValueCheckError` (a SurgeryError) when the values differ.
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
        reference = _reference(model, group_set, chosen, plan.cuts, example_inputs) \
            if check and values else None
        plan.attrs, votes = _apply(model, plan.cuts, snap, _sizes(group_set, chosen))
        config_notes = _set_config(model, votes, plan,
                                   group_set if check and configs == "strict" else None)
        if check:
            out = forward_check(model, example_inputs, group_set.output_shapes)
            problem = compare(reference, out) if reference is not None else None
            if problem:
                raise ValueCheckError(f"value check: {problem}", "", "value check")
    except SurgeryError:
        snap.restore()
        raise
    except Exception as err:
        snap.restore()
        raise SurgeryError(f"surgery failed: {type(err).__name__}: {err}") from err
    if check:
        hf_config.warn(config_notes)
    return plan


def _reference(model: nn.Module, gs: GroupSet, chosen: dict[str, list[int]], cuts: list[Cut],
               example_inputs: Any) -> list[torch.Tensor]:
    try:
        return reference_outputs(model, gs, chosen, cuts, example_inputs)
    except EmulationError as err:
        raise ValueCheckError(f"value check cannot verify this cut: {err}", "",
                              "value check") from err


def apply_plan(model: nn.Module, plan: Plan, example_inputs: Any = None) -> nn.Module:
    """Replay ``plan`` on a model built like the original (no tracing needed).

    Cuts are applied in order, then the recorded attribute and config values are set.
    With ``example_inputs`` a forward check runs too. All or nothing: every cut, attribute
    and config value is checked against the model first
    (:func:`prunekit.surgery.allowed.check_replay`), a plan that does not fit raises
    :class:`~prunekit.surgery.PlanError` naming the field and changes nothing.
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
    check_replay(model, plan)
    _cut_all(model, plan.cuts)
    for name, attrs in plan.attrs.items():
        if name not in mods:
            raise ValueError(f"plan sets attributes of unknown module {name!r}")
        for attr, value in attrs.items():
            old = getattr(mods[name], attr, None)
            setattr(mods[name], attr, tuple(value) if isinstance(old, tuple) else value)
    hf_config.replay(model, plan.config)
