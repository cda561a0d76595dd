"""DenseNet connections as a structure: groups, scores, physical removal, diagram.

In a dense block every layer reads the concatenation of the block input and all earlier
layers' outputs, and the block output concatenates them all. A *connection* ``i → j`` is
the slice of consumer ``j``'s input that comes from source ``i`` — the matching input
channels of ``j``'s first normalization and convolution (or, for ``j = "out"``, of the
layers after the block, e.g. the transition's norm and conv). The slices are read from
:func:`prunekit.graph.build_groups`, so no layer type is special-cased.

Units for proximal training (:func:`connection_groups`):

* ``level="connection"``: per block one group, one channel per connection ``i → j``
  (``j`` a layer), members the consumer slices — penalty ``λ Σ_{i→j} w ‖W_{j,i}‖₂``;
* ``level="layer"``: per block one group, one channel per layer ``i``, members all its
  outgoing slices (later layers and the block output) — ``λ Σ_i w ‖[W_{j,i}]_j‖₂``.

A zero slice means the consumer ignores that source (its normalization outputs zero on
those channels and the convolution adds nothing), so removing it does not change the
outputs. Removal (:func:`remove_connections`) cuts the slices with
:func:`prunekit.surgery.remove_channels`, turns the block into a
:class:`ConnectedDenseBlock` with explicit connection lists, and deletes a layer whose
last outgoing connection goes (its output no longer enters any concat). ``i → out`` goes
only together with (or after) all other outgoing connections of ``i``; a layer keeps at
least one input. All or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from prunekit.graph import Group, GroupSet, Member, build_groups
from prunekit.graph.trace import iter_tensors
from prunekit.inputs import call_model, inference_mode_of
from prunekit.structures._connection_block import INPUT, ConnectedDenseBlock, resolve
from prunekit.structures._connection_trace import OUT, DenseBlock, find_dense_blocks, name_of
from prunekit.structures.plancheck import check_header, check_surgery
from prunekit.structures.registry import Structure, register
from prunekit.surgery import (
    Plan,
    SurgeryError,
    apply_plan,
    forward_check,
    remove_channels,
    transaction,
)
from prunekit.surgery import validate as v
from prunekit.surgery.validate import PlanError
from prunekit.surgery.validate import key as field_key

PLAN_VERSION = 1
LEVELS = ("connection", "layer")
Slices = dict[tuple[str, int], list[int]]


@dataclass
class ConnectionPlan:
    """A connection removal as plain data (JSON), replayable with
    :func:`apply_connection_plan`: the removed connection names, the layers removed
    whole, each touched block's connection lists afterwards and the surgery cuts."""

    removed: list[str]
    removed_layers: dict[str, list[str]]
    blocks: dict[str, dict[str, Any]]
    surgery: dict[str, Any]
    version: int = PLAN_VERSION
    structure: str = "connection"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> ConnectionPlan:
        """Inverse of :meth:`to_dict`; :class:`~prunekit.surgery.PlanError` (a ValueError)
        naming the field on a foreign, newer or malformed plan."""
        d = check_header(data, "connection", PLAN_VERSION,
                         ("removed", "removed_layers", "blocks", "surgery"))
        return cls(v.strings(d["removed"], "removed"),
                   v.mapping(d["removed_layers"], "removed_layers", v.strings),
                   v.mapping(d["blocks"], "blocks", _block), check_surgery(d["surgery"], "surgery"),
                   d["version"])

    @classmethod
    def from_json(cls, text: str) -> ConnectionPlan:
        return cls.from_dict(json.loads(text))


def _block(data: Any, at: str) -> dict[str, Any]:
    """``{"order", "inputs", "outputs", "call"}``: each layer reads only the block input
    and surviving layers before it; the output concatenates surviving sources."""
    d = v.record(data, at, ("order", "inputs", "outputs", "call"))
    order = v.strings(d["order"], f"{at}.order")
    if not order or len(set(order)) != len(order) or INPUT in order:
        raise PlanError(f"expected distinct layer paths (not {INPUT!r}), at least one",
                        field=f"{at}.order")
    inputs = v.mapping(d["inputs"], f"{at}.inputs", v.strings)
    position = {k: i for i, k in enumerate(order)}
    for layer, sources in inputs.items():
        if layer not in position:
            raise PlanError(f"{layer!r} is not in order", field=f"{at}.inputs")
        early = [s for s in sources if s != INPUT and not (
            s in inputs and position.get(s, len(order)) < position[layer])]
        if early or not sources:
            raise PlanError(f"layer {layer!r} must read the input or surviving layers before "
                            f"it, got {sources[:8]}", field=f"{at}.inputs[{layer!r}]")
    outputs = v.strings(d["outputs"], f"{at}.outputs")
    if not outputs or any(s != INPUT and s not in inputs for s in outputs):
        raise PlanError(f"expected the input or surviving layers, got {outputs[:8]}",
                        field=f"{at}.outputs")
    return {"order": order, "inputs": inputs, "outputs": outputs,
            "call": v.string(d["call"], f"{at}.call", ("list", "tensor"))}


@dataclass
class ConnectionResult:
    """What :func:`prune_connections` did."""

    model: nn.Module
    plan: ConnectionPlan
    scores: dict[str, float] = field(default_factory=dict)
    before: int = 0
    after: int = 0

    def report(self) -> str:
        layers = sum(len(v) for v in self.plan.removed_layers.values())
        return (f"connections {self.before} -> {self.after} ({len(self.plan.removed)} removed), "
                f"layers removed whole: {layers}")


# ---------------------------------------------------------------- find / slices
def find_connections(model: nn.Module, example_inputs: Any) -> list[str]:
    """Names ``"<block>:<source>-><consumer>"`` of every surviving connection."""
    return [name_of(b.name, s, j) for b in find_dense_blocks(model, example_inputs)
            for s, j in b.connections()]


def _blocks_or_error(model: nn.Module, example_inputs: Any) -> list[DenseBlock]:
    blocks = find_dense_blocks(model, example_inputs)
    if not blocks:
        raise ValueError(f"model: {type(model).__name__} has no dense blocks (no module whose "
                         "output is the concat of its input and all its layers' outputs)")
    return blocks


def _slices(model: nn.Module, example_inputs: Any,
            blocks: list[DenseBlock]) -> dict[str, dict[tuple[str, str], Slices]]:
    """``{block: {(source, consumer): {(param, dim): indices}}}`` from the graph group of
    each block's output channels (sources in output order)."""
    gs = build_groups(model, example_inputs)
    out = {}
    for b in blocks:
        width = sum(b.widths[s] for s in b.outputs)
        g = next((g for g in gs.groups if (b.name, 1) in [tuple(x) for x in g.sources]
                  and g.size == width), None)
        if g is None:
            raise ValueError(f"model: the output channels of dense block {b.name!r} are not "
                             "one traceable channel group; its connections cannot be cut")
        offset, chans = 0, {}
        for s in b.outputs:
            chans[s] = range(offset, offset + b.widths[s])
            offset += b.widths[s]
        per: dict[tuple[str, str], Slices] = {}
        prefix = f"{b.name}." if b.name else ""
        for s, j in b.connections():
            sl: Slices = {}
            for m in g.members:
                if not _consumes(m.param.rsplit(".", 1)[0], j, b, prefix):
                    continue
                idx = [i for c in chans[s] for i in m.index[c]]
                if idx:
                    sl[(m.param, m.dim)] = idx
            per[(s, j)] = sl
        out[b.name] = per
    return out


def _consumes(module: str, consumer: str, b: DenseBlock, prefix: str) -> bool:
    if consumer == OUT:
        return module in b.downstream
    return module == f"{prefix}{consumer}" or module.startswith(f"{prefix}{consumer}.")


def connection_groups(model: nn.Module, example_inputs: Any,
                      level: str = "connection") -> list[Group]:
    """The connections as :class:`Group` objects for proximal training (see module
    docstring). Group ids: ``"connection:<block>"`` (layer level) or
    ``"connection:<block>:pairs"``; channel names in ``Group.sources`` order are given by
    :func:`group_units`. ValueError for a model without dense blocks or a bad level."""
    return [g for g, _ in _groups_and_units(model, example_inputs, level)]


def group_units(model: nn.Module, example_inputs: Any,
                level: str = "connection") -> dict[str, list[str]]:
    """``{group id: [connection name per channel]}`` for :func:`connection_groups`
    (layer level: ``"<block>:<layer>->*"``)."""
    return {g.id: units for g, units in _groups_and_units(model, example_inputs, level)}


def _groups_and_units(model: nn.Module, example_inputs: Any,
                      level: str) -> list[tuple[Group, list[str]]]:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    blocks = _blocks_or_error(model, example_inputs)
    slices = _slices(model, example_inputs, blocks)
    out = []
    for b in blocks:
        if level == "connection":
            units = [(s, j) for s, j in b.connections() if j != OUT]
            parts = [[(s, j)] for s, j in units]
            names = [name_of(b.name, s, j) for s, j in units]
            gid = f"connection:{b.name}:pairs"
        else:
            srcs = [s for s in b.alive]
            parts = [[(s, j) for j in b.outgoing(s)] for s in srcs]
            names = [name_of(b.name, s, "*") for s in srcs]
            gid = f"connection:{b.name}"
        out.append((_group(gid, parts, slices[b.name]), names))
    return out


def _group(gid: str, parts: list[list[tuple[str, str]]],
           slices: dict[tuple[str, str], Slices]) -> Group:
    index: dict[tuple[str, int], list[list[int]]] = {}
    for k, pairs in enumerate(parts):
        for pair in pairs:
            for key, idx in slices[pair].items():
                if key not in index:
                    index[key] = [[] for _ in parts]
                index[key][k] = sorted(set(index[key][k]) | set(idx))
    members = [Member(p, d, idx) for (p, d), idx in index.items()]
    return Group(gid, len(parts), members)


def score_connections(model: nn.Module, names: Iterable[str] | None, example_inputs: Any,
                      **_: Any) -> dict[str, float]:
    """``‖W_{j,i}‖₂`` per connection (parameters of the consumer slice; higher = keep)."""
    blocks = _blocks_or_error(model, example_inputs)
    slices = _slices(model, example_inputs, blocks)
    params = dict(model.named_parameters())
    scores = {}
    for b in blocks:
        for (s, j), sl in slices[b.name].items():
            sq = sum(float(params[p].detach().index_select(d, _long(idx)).double().pow(2).sum())
                     for (p, d), idx in sl.items() if p in params)
            scores[name_of(b.name, s, j)] = sq ** 0.5
    wanted = set(names) if names is not None else None
    return {k: v for k, v in scores.items() if wanted is None or k in wanted}


def _long(idx: list[int]) -> Any:
    import torch

    return torch.as_tensor(idx, dtype=torch.long)


# ---------------------------------------------------------------- removal
def _parse(names: list[str], blocks: list[DenseBlock]) -> dict[str, set[tuple[str, str]]]:
    by = {b.name: b for b in blocks}
    want: dict[str, set[tuple[str, str]]] = {}
    for n in names:
        if not isinstance(n, str) or ":" not in n or "->" not in n:
            raise ValueError(f"names: {n!r} is not a connection name '<block>:<src>-><dst>'")
        block, _, pair = n.rpartition(":")
        src, _, dst = pair.partition("->")
        b = by.get(block)
        if b is None:
            raise ValueError(f"names: {n!r}: no dense block {block!r}; blocks: {sorted(by)}")
        live = set(b.connections())
        pairs = {(src, j) for j in b.outgoing(src)} if dst == "*" else {(src, dst)}
        if not pairs or not pairs <= live:
            raise ValueError(f"names: {n!r} is not a surviving connection of {block!r}")
        want.setdefault(block, set()).update(pairs)
    return want


def _new_lists(b: DenseBlock, gone: set[tuple[str, str]]) -> tuple[dict, list, list]:
    """Connection lists after removing ``gone``; ValueError when a rule would break."""
    for s, j in gone:
        if j == OUT and any((s, k) not in gone for k in b.outgoing(s) if k != OUT):
            raise ValueError(f"names: {name_of(b.name, s, OUT)} can only go together with "
                             f"every other outgoing connection of {s!r}")
    outputs = [s for s in b.outputs if (s, OUT) not in gone]
    dead = [k for k in b.alive if k not in outputs]
    inputs = {j: [s for s in b.inputs[j] if (s, j) not in gone and s not in dead]
              for j in b.alive if j not in dead}
    empty = [j for j, srcs in inputs.items() if not srcs]
    if empty:
        raise ValueError(f"names: layers {empty} of {b.name!r} would have no input left")
    return inputs, outputs, dead


def remove_connections(model: nn.Module, names: Iterable[str],
                       example_inputs: Any) -> ConnectionPlan:
    """Remove the named connections in place, all or nothing.

    ``names``: ``"<block>:<source>-><consumer>"`` (consumer a layer key or ``"out"``) or
    ``"<block>:<source>->*"`` for every outgoing connection of a layer (which removes
    the layer whole).

    Raises
    ------
    ValueError
        Unknown names, a layer left without input, ``i → out`` alone, a model without
        dense blocks (model untouched).
    SurgeryError
        The cut or forward check failed; the model was restored bit-identically.
    """
    if isinstance(names, str):
        raise TypeError("names must be an iterable of connection names, not one string")
    names = list(names)
    blocks = _blocks_or_error(model, example_inputs)
    want = _parse(names, blocks)
    by = {b.name: b for b in blocks}
    lists = {bn: _new_lists(by[bn], gone) for bn, gone in want.items()}
    with inference_mode_of(model):
        expected = [tuple(t.shape) for t in iter_tensors(call_model(model, example_inputs))]
    slices = _slices(model, example_inputs, [by[bn] for bn in want])
    syn = _cut_group(want, lists, slices)
    try:
        with transaction(model):
            _swap_blocks(model, [(bn, by[bn], *lists[bn]) for bn in lists])
            if syn.size > 1:
                # the rebuilt layers only run after the cut (no zeroed original to compare
                # with): shapes are checked; removing connections changes values by design
                plan = remove_channels(model, GroupSet([syn], [], expected),
                                       {syn.id: list(range(syn.size - 1))}, example_inputs,
                                       values=False)
            else:
                plan = Plan()
                forward_check(model, example_inputs, expected)
    except SurgeryError as err:
        raise SurgeryError(f"removing connections failed: {err}; the model was restored",
                           err.module, err.op) from err
    removed = sorted(name_of(bn, s, j) for bn, gone in want.items() for s, j in gone)
    return ConnectionPlan(removed, {bn: lists[bn][2] for bn in lists if lists[bn][2]},
                          {bn: {"order": by[bn].order, "inputs": lists[bn][0],
                                "outputs": lists[bn][1], "call": by[bn].call}
                           for bn in lists}, plan.to_dict())


def _cut_group(want: dict[str, set[tuple[str, str]]], lists: dict[str, tuple],
               slices: dict[str, dict[tuple[str, str], Slices]]) -> Group:
    """Synthetic group: channel k = one removed connection whose consumer survives (a
    removed layer's inputs go with its parameters), plus one empty channel."""
    prefix_dead = [f"{bn}.{k}." if bn else f"{k}." for bn, (_i, _o, dead) in lists.items()
                   for k in dead]
    parts = []
    for bn, gone in want.items():
        for pair in sorted(gone):
            sl = {key: idx for key, idx in slices[bn][pair].items()
                  if not any(key[0].startswith(p) for p in prefix_dead)}
            if sl:
                parts.append(sl)
    index: dict[tuple[str, int], list[list[int]]] = {}
    for k, sl in enumerate(parts):
        for key, idx in sl.items():
            if key not in index:
                index[key] = [[] for _ in range(len(parts) + 1)]
            index[key][k] = idx
    members = [Member(p, d, idx) for (p, d), idx in index.items()]
    return Group("connection-cuts", len(parts) + 1 if members else 1, members)


def _rebuild(old: nn.Module, b: DenseBlock, inputs: dict, outputs: list,
             dead: list[str]) -> tuple[ConnectedDenseBlock, list[tuple[nn.Module, str, Any]]]:
    """The new block and the container entries set to None for dead layers (to undo)."""
    children = dict(old._modules)
    undo = []
    for path in dead:
        parent_path, _, leaf = path.rpartition(".")
        if not parent_path:
            children[leaf] = None
            continue
        parent = resolve(old, parent_path)
        undo.append((parent, leaf, parent._modules[leaf]))
    new = ConnectedDenseBlock(children, b.order, inputs, outputs, b.call)
    new.train(old.training)
    return new, undo


def _has_entry(root: nn.Module, path: str) -> bool:
    """``path`` is a child entry below ``root`` (a layer, or the None of a removed one)."""
    *parents, leaf = path.split(".")
    parent = resolve(root, ".".join(parents)) if parents else root
    return parent is not None and leaf in parent._modules


def _kill(undo: list[tuple[nn.Module, str, Any]]) -> None:
    for parent, leaf, _m in undo:
        parent._modules[leaf] = None


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, key = path.rpartition(".")
    model.get_submodule(parent)._modules[key] = module


def apply_connection_plan(model: nn.Module, plan: ConnectionPlan | dict,
                          example_inputs: Any = None) -> ConnectionPlan:
    """Replay a plan on a freshly built model of the original architecture (all or
    nothing; with ``example_inputs`` the result is forward-checked)."""
    if isinstance(plan, dict):
        plan = ConnectionPlan.from_dict(plan)
    rebuilds = []
    mods = dict(model.named_modules())
    for bn, info in plan.blocks.items():
        old = mods.get(bn)
        if old is None or not bn:
            raise PlanError(f"the model has no submodule {bn!r} to rebuild",
                            field=field_key("blocks", bn))
        missing = [k for k in info["inputs"] if resolve(old, k) is None]
        missing += [k for k in info["order"] if not _has_entry(old, k)]
        if missing:
            raise PlanError(f"block {bn!r} has no layers {missing[:5]}",
                            field=field_key("blocks", bn))
        dead = [k for k in info["order"] if k not in info["inputs"] and resolve(old, k)]
        b = DenseBlock(bn, info["order"], {}, [], {}, info["call"], frozenset())
        rebuilds.append((bn, b, info["inputs"], info["outputs"], dead))
    with transaction(model):
        _swap_blocks(model, rebuilds)
        apply_plan(model, Plan.from_dict(plan.surgery), example_inputs)
    return plan


def _swap_blocks(model: nn.Module, rebuilds: list[tuple[str, DenseBlock, Any, Any, Any]]
                 ) -> None:
    """Put a rebuilt block in place of each named one; dead layers' entries become None
    (call inside a transaction: it is what puts them back)."""
    swaps, dead_entries = [], []
    for bn, block, inputs, outputs, dead in rebuilds:
        new, kill = _rebuild(model.get_submodule(bn), block, inputs, outputs, dead)
        swaps.append((bn, new))
        dead_entries += kill
    for path, new in swaps:
        _set(model, path, new)
    _kill(dead_entries)


# ---------------------------------------------------------------- one call
def zero_connections(model: nn.Module, example_inputs: Any) -> list[str]:
    """Connections whose consumer-slice parameters are all exactly zero and that can be
    removed together (``i → out`` only when all of ``i``'s other connections are zero,
    one input kept per surviving layer)."""
    blocks = _blocks_or_error(model, example_inputs)
    scores = score_connections(model, None, example_inputs)
    names = []
    for b in blocks:
        zero = {(s, j) for s, j in b.connections() if scores[name_of(b.name, s, j)] == 0.0}
        zero = {(s, j) for s, j in zero
                if j != OUT or all((s, k) in zero for k in b.outgoing(s))}
        dead = {s for s, j in zero if j == OUT}
        for j in b.alive:
            if j in dead:
                continue
            keep = [s for s in b.inputs[j] if (s, j) not in zero and s not in dead]
            if not keep:  # keep the input from the latest surviving source
                live = [s for s in b.inputs[j] if s not in dead] or b.inputs[j][:1]
                zero.discard((live[-1], j))
                if live[-1] in dead:
                    dead.discard(live[-1])
                    zero = {(s, k) for s, k in zero if not (s == live[-1] and k == OUT)}
        names += [name_of(b.name, s, j) for s, j in sorted(zero)]
    return names


def prune_connections(model: nn.Module, example_inputs: Any, *, ratio: float | None = None,
                      n_connections: int | None = None,
                      zero_only: bool = False) -> ConnectionResult:
    """Remove connections in one call (in place, all or nothing): ``zero_only=True``
    removes the exactly-zero ones (after proximal training); ``ratio`` / ``n_connections``
    remove the lowest-norm layer-to-layer connections (``i → j``, ``j`` a layer), keeping
    one input per layer."""
    blocks = _blocks_or_error(model, example_inputs)
    before = sum(len(b.connections()) for b in blocks)
    scores = score_connections(model, None, example_inputs)
    if sum(x is not None for x in (ratio, n_connections, zero_only or None)) != 1:
        raise ValueError("give exactly one of ratio, n_connections and zero_only=True")
    if zero_only:
        pick = zero_connections(model, example_inputs)
    else:
        pick = _lowest(blocks, scores, ratio, n_connections)
    plan = remove_connections(model, pick, example_inputs) if pick else \
        ConnectionPlan([], {}, {}, {})
    return ConnectionResult(model, plan, scores, before, before - len(plan.removed))


def _lowest(blocks: list[DenseBlock], scores: dict[str, float], ratio: float | None,
            n: int | None) -> list[str]:
    pairs = [(b, s, j) for b in blocks for s, j in b.connections() if j != OUT]
    if ratio is not None:
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        n = round(ratio * len(pairs))
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n_connections must be a non-negative int, got {n!r}")
    left = {(b.name, j): len(b.inputs[j]) for b in blocks for j in b.alive}
    pick = []
    for b, s, j in sorted(pairs, key=lambda t: scores[name_of(t[0].name, t[1], t[2])]):
        if len(pick) == n:
            break
        if left[(b.name, j)] > 1:
            left[(b.name, j)] -= 1
            pick.append(name_of(b.name, s, j))
    return pick


def connection_diagram(model: nn.Module, example_inputs: Any, png: str | None = None,
                       json_path: str | None = None, title: str = "") -> dict[str, Any]:
    """The surviving dependency diagram: per block a source × consumer matrix (1 alive,
    0 removed, None impossible) with the slice norms, as JSON and optionally a PNG
    (matrix and drawn graph per block). See :mod:`prunekit.structures._connection_diagram`."""
    from prunekit.structures._connection_diagram import diagram_data, draw

    blocks = _blocks_or_error(model, example_inputs)
    data = diagram_data(blocks, score_connections(model, None, example_inputs))
    if json_path is not None:
        with open(json_path, "w") as fh:
            json.dump(data, fh, indent=1)
    if png is not None:
        draw(data, png, title)
    return data


CONNECTION = register(Structure("connection", find=find_connections, score=score_connections,
                                remove=remove_connections, prune=prune_connections,
                                apply_plan=apply_connection_plan, groups=connection_groups))

__all__ = ["CONNECTION", "INPUT", "OUT", "ConnectedDenseBlock", "ConnectionPlan",
           "ConnectionResult", "DenseBlock", "apply_connection_plan", "connection_diagram",
           "connection_groups", "find_connections", "find_dense_blocks", "group_units",
           "prune_connections", "remove_connections", "score_connections",
           "zero_connections"]
