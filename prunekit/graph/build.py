"""From a traced forward pass to coupled channel groups.

A *unit* is a class of atoms (see :mod:`.atoms`) that is not fixed and that appears both
in a parameter and in at least one activation (so a parameter dim nobody reads along,
like a kernel dim, is never a unit). Units that share a parameter dim form one *group*;
channel ``c`` of a group is its ``c``-th unit in order of first appearance.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from torch import nn

from prunekit.graph.atoms import FIXED, Atoms
from prunekit.graph.labels import all_atoms
from prunekit.graph.trace import TraceState, iter_tensors, trace
from prunekit.graph.types import Group, GroupSet, Member
from prunekit.graph.width_ops import WidthOp


def resolve_ignore(model: nn.Module, ignore: Iterable[Any]) -> set[str]:
    """Module names from names or module objects; unknown entries raise ValueError."""
    if isinstance(ignore, (str, nn.Module)):
        ignore = [ignore]
    names = {id(m): n for n, m in model.named_modules()}
    known = set(names.values())
    out = set()
    for item in ignore:
        if isinstance(item, nn.Module):
            if id(item) not in names:
                raise ValueError(f"ignore: module {type(item).__name__} is not part of model")
            out.add(names[id(item)])
        elif isinstance(item, str):
            if item not in known:
                raise ValueError(f"ignore: no module named {item!r} in the model")
            out.add(item)
        else:
            raise TypeError(f"ignore entries must be module names or modules, got {item!r}")
    return out


def _under(param: str, modules: set[str]) -> bool:
    return any(m == "" or param == m or param.startswith(m + ".") for m in modules)


def _active_roots(st: TraceState) -> np.ndarray:
    params = set(st.param_names) | set(st.buffer_names)
    chunks = [all_atoms(lab) for tid, lab in st.labels.items() if tid not in params]
    if not chunks:
        return np.zeros(0, np.int64)
    roots = np.unique(st.uf.find(np.concatenate(chunks)))
    return roots[roots != FIXED]


def _occurrences(st: TraceState, active: np.ndarray) -> dict[tuple[str, int], np.ndarray]:
    """``{(param, dim): roots per position}`` for every param dim with a unit."""
    occ = {}
    is_active = np.zeros(st.uf.size, dtype=bool)  # lookup table: O(1) per root, no sorting
    is_active[active] = True
    for name, lab in st.param_labels.items():
        for b in lab.blocks:
            roots = st.uf.find(b.atoms).ravel()
            live = is_active[roots]
            if live.any():
                occ[(name, b.dims[0])] = np.where(live, roots, FIXED)
    return occ


def _clusters(occ: dict[tuple[str, int], np.ndarray]) -> list[list[tuple[str, int]]]:
    """Param dims grouped by shared units (a union-find over unit roots)."""
    if not occ:
        return []
    units = np.unique(np.concatenate([r[r != FIXED] for r in occ.values()]))
    uf = Atoms()
    uf.new(units.size)  # unit k is atom k + 1
    for roots in occ.values():
        ids = np.searchsorted(units, np.unique(roots[roots != FIXED])) + 1
        if ids.size > 1:
            uf.union(ids[1:], ids[:1])
    clusters: dict[int, list[tuple[str, int]]] = {}
    for key, roots in occ.items():
        first = np.searchsorted(units, roots[roots != FIXED][:1]) + 1
        clusters.setdefault(int(uf.find(first)[0]), []).append(key)
    return [clusters[k] for k in sorted(clusters)]


def _sources(st: TraceState, channels: np.ndarray) -> list[tuple[str, int]]:
    found = []
    for module, t in st.module_outputs:
        lab = st.labels.get(id(t))
        if lab is None:
            continue
        for b in lab.blocks:
            if len(b.dims) == 1 and b.atoms.size == channels.size:
                if np.array_equal(st.uf.find(b.atoms), channels):
                    entry = (module, b.dims[0])
                    if entry not in found:
                        found.append(entry)
    return found


def _group(st: TraceState, keys: list[tuple[str, int]], occ: dict, taken: set[str]) -> Group:
    channels = np.unique(np.concatenate([occ[k][occ[k] != FIXED] for k in keys]))
    members = [Member(name, dim, _index(occ[(name, dim)], channels)) for name, dim in keys]
    sources = _sources(st, channels)
    first = keys[0][0].rsplit(".", 1)[0] if "." in keys[0][0] else keys[0][0]
    base = sources[0][0] if sources and sources[0][0] else first
    gid, k = base, 1
    while gid in taken:
        k += 1
        gid = f"{base}#{k}"
    taken.add(gid)
    return Group(gid, int(channels.size), members, sources, prunable=channels.size > 1)


def _index(roots: np.ndarray, channels: np.ndarray) -> list[list[int]]:
    """``index[c]``: positions of ``roots`` equal to ``channels[c]``."""
    pos = np.nonzero(roots != FIXED)[0]
    ch = np.searchsorted(channels, roots[pos])
    order = np.argsort(ch, kind="stable")
    flat = pos[order].tolist()
    b = [0, *np.cumsum(np.bincount(ch, minlength=channels.size)).tolist()]
    return [flat[b[i]:b[i + 1]] for i in range(channels.size)]


def _shape_attrs(st: TraceState, unit_of: dict[int, tuple[str, int]]) -> dict:
    out: dict[str, dict[str, list]] = {}
    for module, attrs in st.shape_attrs.items():
        for attr, dims in attrs.items():
            out.setdefault(module, {})[attr] = [
                [unit_of.get(int(r)) for r in st.uf.find(atoms).tolist()] for atoms in dims]
    return out


def assemble(st: TraceState, output: Any, ignored: set[str]) -> GroupSet:
    """Groups from a finished trace (``ignored`` modules' parameters are fixed first)."""
    for name, lab in st.param_labels.items():
        if _under(name, ignored):
            st.uf.fix(all_atoms(lab))
    occ = _occurrences(st, _active_roots(st))
    taken: set[str] = set()
    groups = [_group(st, keys, occ, taken) for keys in _clusters(occ)]
    unit_of = {}
    for g in groups:
        for c, r in enumerate(_group_roots(g, occ)):
            unit_of[r] = (g.id, c)
    return GroupSet(
        groups=groups,
        skipped=[dict(v) for v in st.skipped.values()],
        output_shapes=[tuple(t.shape) for t in iter_tensors(output)],
        shape_attrs=_shape_attrs(st, unit_of),
        width_ops=_width_ops(st, groups, unit_of),
    )


def _width_ops(st: TraceState, groups: list[Group], unit_of: dict[int, tuple[str, int]]
               ) -> list[WidthOp]:
    """The recorded width-dependent ops whose dims carry a group's channels, with atoms
    resolved to unit ids (``offset of the group + channel``)."""
    if not unit_of or not st.width_ops:
        return []
    offsets, k = {}, 0
    for g in groups:
        offsets[g.id], k = k, k + g.size
    roots = np.array(sorted(unit_of), np.int64)
    ids = np.array([offsets[unit_of[r][0]] + unit_of[r][1] for r in roots.tolist()], np.int64)
    out = []
    for index, op, kind, module, dims, shape, blocks in st.width_ops:
        resolved = []
        for b in blocks:
            r = st.uf.find(b.atoms)
            pos = np.clip(np.searchsorted(roots, r), 0, roots.size - 1)
            units = np.where(roots[pos] == r, ids[pos], -1)
            if np.any(units >= 0):
                resolved.append((b.dims, units))
        if resolved:
            out.append(WidthOp(index, op, kind, module, dims, shape, resolved))
    return out


def _group_roots(g: Group, occ: dict) -> list[int]:
    roots = np.unique(np.concatenate([occ[(m.param, m.dim)] for m in g.members]))
    return [int(r) for r in roots.tolist() if r != FIXED]


def build_groups(model: nn.Module, example_inputs: Any, ignore: Iterable[Any] = ()) -> GroupSet:
    """Trace ``model`` once on ``example_inputs`` and return its coupled channel groups.

    Parameters
    ----------
    model
        Any ``nn.Module``; it is run once in eval mode under ``torch.no_grad`` and is not
        modified (train/eval flags are restored).
    example_inputs
        A tensor (``model(x)``), a tuple/list (``model(*x)``) or a dict (``model(**x)``).
    ignore
        Module names or module objects whose parameters must keep their size (all their
        dims, including the inputs they read); submodules are included.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module`` or an ``ignore`` entry has a wrong type.
    ValueError
        If ``ignore`` names an unknown module or the inputs do not run through the model.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    ignored = resolve_ignore(model, ignore)
    with _no_gc():  # many small lists: the cyclic GC would rescan the whole trace each time
        try:
            st, out = trace(model, example_inputs)
        except Exception as err:
            raise ValueError(
                f"example_inputs do not run through the model: {type(err).__name__}: {err}"
            ) from err
        return assemble(st, out, ignored)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
