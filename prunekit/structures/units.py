"""Layers that can go whole, across structures: one ordered list for a depth search.

Two structures delete whole layers:

* ``"depth"`` — a residual block ``y = x + f(x)`` (or ``LN(x + f(x))``) deleted from its
  container (:func:`prunekit.structures.remove_blocks`); scored by the angular distance
  between its input and output, lowest first (it turns the hidden state least);
* ``"connection"`` at layer level — a DenseNet layer, whose output only enters
  concatenations: all its outgoing connections go, which deletes the layer and slices
  its channels out of every later consumer (:func:`~prunekit.structures.connection.
  remove_connections` with ``"<block>:<layer>->*"``); scored by the RMS of the consumer
  weights that read it, ``‖[W_{j,i}]_j‖₂ / √n``, lowest first (later layers barely look
  at it). Each dense block keeps its highest-scored layer. Dense blocks whose output
  channels are not one traceable channel group (the ``connection`` structure cannot cut
  them) give no units.

A residual block that is the only child of its container can never go (a container keeps
one block) and is left out; then a unit that holds other units (a stage of residual blocks
that is itself residual) is left out too: its blocks are the finer units.

Kinds are interleaved by rank (the unit at rank ``r`` of the ``n`` of its kind sorts at
``(r + 1) / n``), so a model that has both loses both in proportion. ``Unit.macs`` is
what removing the unit saves: its own MACs plus, for a dense layer, its consumers'
slices ``MACs(consumer) · |slice| / in_channels`` — the MAC-share model of
:mod:`prunekit.hardware.depth_search` aims with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.measure.counting import MacProfile, mac_profile
from prunekit.surgery.state import transaction

KINDS = ("depth", "connection")


@dataclass(frozen=True)
class Unit:
    """A removable layer: ``name`` as its structure names it (a block's module name, or
    ``"<dense block>:<layer>->*"``), its ``kind`` (structure), its ``module`` (qualified
    name), its ``score`` (higher = keep) and the MACs its removal saves."""

    name: str
    kind: str
    module: str
    score: float
    macs: int


def find_units(model: nn.Module, x: Any, profile: MacProfile | None = None) -> list[Unit]:
    """Every removable layer of ``model`` in removal order (see the module docstring).
    ``profile``: the model's :func:`~prunekit.measure.counting.mac_profile` on ``x``
    if the caller already has it (counted here otherwise). The model is not changed."""
    from prunekit.structures.depth import find_blocks
    from prunekit.structures.scoring import score_blocks

    prof = (profile or mac_profile(model, x)).by_module
    blocks = find_blocks(model, x)
    scores = score_blocks(model, blocks, x, method="angular") if blocks else {}
    residual = [Unit(b.name, "depth", b.name, scores[b.name], _own(prof, b.name))
                for b in blocks if len(model.get_submodule(b.container)._modules) > 1]
    units = residual + _dense_layers(model, x, prof)
    modules = [u.module for u in units]
    inner = [u for u in units if not any(m.startswith(u.module + ".") for m in modules)]
    ranked = _ranked([u for u in inner if u.kind == "depth"]) + \
        _ranked([u for u in inner if u.kind == "connection"])
    return [u for _, u in sorted(ranked, key=lambda t: t[0])]


def _ranked(units: list[Unit]) -> list[tuple[float, Unit]]:
    units = sorted(units, key=lambda u: u.score)
    return [((r + 1) / len(units), u) for r, u in enumerate(units)]


def _own(prof: dict[str, int], module: str) -> int:
    return sum(v for m, v in prof.items() if m == module or m.startswith(module + "."))


def _dense_layers(model: nn.Module, x: Any, prof: dict[str, int]) -> list[Unit]:
    """Dense layers as units, all but the highest-scored one of each dense block."""
    from prunekit.structures._connection_trace import find_dense_blocks, name_of
    from prunekit.structures.connection import _slices

    blocks = find_dense_blocks(model, x)
    if not blocks:
        return []
    try:
        slices = _slices(model, x, blocks)
    except ValueError:  # a block whose channels are not one traceable group: no layer units
        return []
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    out = []
    for b in blocks:
        prefix = f"{b.name}." if b.name else ""
        units = []
        for s in b.alive:
            sq, n, saved = 0.0, 0, _own(prof, prefix + s)
            for j in b.outgoing(s):
                for (p, d), idx in slices[b.name][(s, j)].items():
                    if p not in params:
                        continue
                    w = params[p].detach()
                    part = w.index_select(d, torch.as_tensor(idx, dtype=torch.long))
                    sq += float(part.double().pow(2).sum())
                    n += part.numel()
                    mod = p.rsplit(".", 1)[0]
                    if d == 1 and isinstance(modules.get(mod), nn.Conv2d | nn.Conv1d | nn.Linear):
                        saved += prof.get(mod, 0) * len(idx) // w.shape[1]
            units.append(Unit(name_of(b.name, s, "*"), "connection", prefix + s,
                              (sq / max(n, 1)) ** 0.5, saved))
        units.sort(key=lambda u: u.score)
        out += units[:-1]
    return out


def remove_units(model: nn.Module, units: Sequence[Unit], x: Any) -> list[Any]:
    """Remove ``units`` in place, all or nothing: residual blocks first, then dense
    layers; the plans applied, in order (a :class:`~prunekit.structures.DepthPlan`,
    a :class:`~prunekit.structures.connection.ConnectionPlan`).

    Raises ValueError (unknown kind, nothing to remove) or what the structure raises
    (ValueError / RuntimeError); the model is then as it was.
    """
    from prunekit.structures import get

    if not units:
        raise ValueError("units: nothing to remove")
    bad = [u.kind for u in units if u.kind not in KINDS]
    if bad:
        raise ValueError(f"units: unknown kinds {sorted(set(bad))}; known: {list(KINDS)}")
    steps = [(k, [u.name for u in units if u.kind == k]) for k in KINDS]
    steps = [(k, names) for k, names in steps if names]
    plans: list[Any] = []
    with transaction(model, copy_values=True):  # a structure may fit weights in place
        for kind, names in steps:
            plans.append(get(kind).remove(model, names, x))
    return plans


def replay_units(model: nn.Module, plans: Sequence[Any], x: Any = None) -> list[Any]:
    """Replay the plans of :func:`remove_units` on ``model`` (built like the original),
    in order, all or nothing; with ``x`` each step is forward-checked."""
    from prunekit.structures import get

    out = []
    with transaction(model, copy_values=True):
        for plan in plans:
            out.append(get(plan.structure).apply_plan(model, plan, x))
    return out
