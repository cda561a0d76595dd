"""Cut what can be cut: find the groups whose cut breaks the model and leave them whole.

A cut of many groups fails as a whole when one group's cut fails (the forward check),
changes values it should not (the value check) or leaves a Hugging Face config that cannot
describe the model (``configs="strict"``). :func:`breaking_groups` finds those
groups by halving the set (a few cuts when few groups break, instead of one per group);
:func:`cut_or_leave_whole` then cuts the rest. Every group left whole is named with the
reason, for the caller's ``skipped``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from prunekit.graph.types import GroupSet
from prunekit.surgery.hf_config import quiet as quiet_config
from prunekit.surgery.plan import Plan
from prunekit.surgery.remove import SurgeryError, ValueCheckError, remove_channels
from prunekit.surgery.state import Snapshot


def _try_cut(model: nn.Module, gs: GroupSet, removal: Mapping[str, Sequence[int]],
             example_inputs: Any) -> Exception | None:
    """The error cutting ``removal`` raises (None when it works); the model is unchanged.
    A trial, undone: its config notes are not the result's (no warnings)."""
    snap = Snapshot.take(model)
    try:
        with quiet_config():
            remove_channels(model, gs, removal, example_inputs, configs="strict")
    except (SurgeryError, ValueError) as err:
        return err
    finally:
        snap.restore()
    return None


def left_whole(gid: str, err: Exception) -> dict[str, Any]:
    """The ``skipped`` entry for group ``gid`` whose cut raised ``err``."""
    if isinstance(err, ValueCheckError):
        why = (f"group {gid!r} left whole: cutting it changes the outputs beyond what "
               f"removing its channels means ({err}); a width fixed in the code (e.g. "
               "view/reshape to a constant size) reads the cut layout differently")
    else:
        why = f"group {gid!r} left whole: cutting it fails ({err})"
    return {"op": getattr(err, "op", ""), "module": getattr(err, "module", ""),
            "reason": why, "group": gid}


def breaking_groups(model: nn.Module, gs: GroupSet, removal: Mapping[str, Sequence[int]],
                    example_inputs: Any, progress: bool = False, known_to_fail: bool = False
                    ) -> list[dict[str, Any]]:
    """``skipped`` entries for the groups of ``removal`` whose cut fails on its own (the
    model is left as it was). Found by halving: a set that cuts cleanly is done.
    ``known_to_fail``: the caller already saw the whole set fail (start with halves)."""
    bad: list[dict[str, Any]] = []
    ids = list(removal)
    todo = [ids[len(ids) // 2:], ids[: len(ids) // 2]] if known_to_fail and len(ids) > 1 \
        else [ids]
    with _status("finding groups that break the cut", progress):
        while todo:
            ids = todo.pop()
            err = _try_cut(model, gs, {g: removal[g] for g in ids}, example_inputs)
            if err is None:
                continue
            if len(ids) == 1:
                bad.append(left_whole(ids[0], err))
            else:
                todo += [ids[len(ids) // 2:], ids[: len(ids) // 2]]
    return bad


def cut_or_leave_whole(model: nn.Module, gs: GroupSet, removal: Mapping[str, Sequence[int]],
                       example_inputs: Any, progress: bool = False
                       ) -> tuple[Plan, list[dict[str, Any]]]:
    """Cut ``removal``; where that fails, leave the breaking groups whole and cut the
    rest. ``(plan, skipped entries of the groups left whole)``."""
    try:
        return remove_channels(model, gs, removal, example_inputs, configs="strict"), []
    except SurgeryError:
        pass
    bad = breaking_groups(model, gs, removal, example_inputs, progress, known_to_fail=True)
    gone = {b["group"] for b in bad}
    rest = {g: c for g, c in removal.items() if g not in gone}
    return remove_channels(model, gs, rest, example_inputs, configs="strict"), bad


def _status(text: str, progress: bool) -> Any:
    if not progress:
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(text)
