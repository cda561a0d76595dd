"""Depth as a structure: find residual blocks, score them, remove them physically.

Removing a block deletes it from its parent ``nn.ModuleList`` / ``nn.Sequential`` (the
model gets shorter and faster, it is not a skip flag), renumbers what depends on the
count (Hugging Face ``config.num_hidden_layers`` / ``layer_types``, every attention's
``layer_idx`` used by the KV cache), and checks the model with a forward pass. The cut is
all or nothing: on any failure the containers and every changed attribute are put back,
so the ``state_dict`` is bit-identical to before.

Why depth: on GPUs at small batch, latency is set by the number of kernels, not their
width; only removing blocks shortens that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.graph.oplog import OpLog
from prunekit.inputs import call_model, inference_mode_of
from prunekit.structures._fixups import Removal, apply_fixers
from prunekit.structures._trace import first_tensor, trace_candidates
from prunekit.structures.plancheck import check_header
from prunekit.surgery import validate as v
from prunekit.surgery.state import transaction
from prunekit.surgery.validate import PlanError, key

PLAN_VERSION = 1
MAX_BLOCKS = 100_000


@dataclass(frozen=True)
class Block:
    """A removable residual block.

    Attributes
    ----------
    name : str
        Qualified module name, e.g. ``"encoder.layer.3"`` or ``"layer1.1"``.
    container : str
        Name of the ``ModuleList`` / ``Sequential`` that holds it.
    key : str
        Its key in the container (``"3"``; named ``Sequential`` keys are kept).
    position : int
        Its position in the container.
    shape : tuple of int
        Input (= output) shape on the traced inputs.
    n_params : int
        Parameters it holds (what removing it saves).
    """

    name: str
    container: str
    key: str
    position: int
    shape: tuple[int, ...]
    n_params: int


@dataclass
class DepthPlan:
    """What a removal did, as plain data (JSON-serializable, replayable on a fresh model).

    ``removed`` are the block names in the numbering *before* this removal;
    ``containers`` maps each touched container to ``{"old_len", "kept", "keys"}``: its
    original length, the original positions of the blocks it keeps, its original keys.
    """

    removed: list[str]
    containers: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    version: int = PLAN_VERSION
    structure: str = "depth"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DepthPlan:
        """Inverse of :meth:`to_dict`; :class:`~prunekit.surgery.PlanError` (a ValueError)
        naming the field on a foreign, newer or malformed plan."""
        d = check_header(data, "depth", PLAN_VERSION, ("removed", "containers"), ("notes",))
        return cls(v.strings(d["removed"], "removed"),
                   v.mapping(d["containers"], "containers", _container),
                   v.strings(d.get("notes", []), "notes"), d["version"])


def _container(data: Any, at: str) -> dict[str, Any]:
    """``{"old_len", "kept", "keys"}``: kept positions inside ``old_len``, one key each."""
    d = v.record(data, at, ("old_len", "kept", "keys"))
    n = v.integer(d["old_len"], f"{at}.old_len", 1, MAX_BLOCKS)
    kept = v.indices(d["kept"], f"{at}.kept", n)
    if not kept or kept != sorted(kept):
        raise PlanError("must list the kept positions in order, at least one",
                        field=f"{at}.kept")
    keys = v.strings(d["keys"], f"{at}.keys")
    if len(keys) != n:
        raise PlanError(f"expected {n} keys (old_len), got {len(keys)}", field=f"{at}.keys")
    return {"old_len": n, "kept": kept, "keys": keys}


def find_blocks(model: nn.Module, example_inputs: Any, log: OpLog | None = None
                ) -> list[Block]:
    """The removable residual blocks of ``model``, in execution-independent module order.

    Candidates are the children of every ``nn.ModuleList`` / ``nn.Sequential`` (this finds
    Hugging Face ``encoder.layer``, ``transformer.h``, ``model.layers``, torchvision
    ``layer1`` .. ``layer4``, ``features``, ``encoder.layers`` ... wherever they sit). One
    recorded forward pass (``log``: one recorded with ``grad=True`` by
    :func:`prunekit.graph.record`, else recorded here) keeps those that were called once,
    map a tensor to a tensor of the same shape and have a skip connection (see
    :mod:`prunekit.structures._trace`). The model is not changed.
    """
    traces = trace_candidates(model, example_inputs, log)
    blocks = []
    for name, tr in traces.items():
        if tr.calls == 1 and tr.skip and tr.mixing and tr.in_shape == tr.out_shape:
            container, _, key = name.rpartition(".")
            position = list(model.get_submodule(container)._modules).index(key)
            blocks.append(Block(name, container, key, position, tr.in_shape, tr.n_params))
    return blocks


def remove_blocks(
    model: nn.Module,
    names: Iterable[str],
    example_inputs: Any,
    *,
    blocks: Sequence[Block] | None = None,
) -> DepthPlan:
    """Physically delete the named blocks, in place, all or nothing.

    Parameters
    ----------
    model : nn.Module
        Changed in place.
    names : iterable of str
        Qualified names of blocks returned by :func:`find_blocks`.
    example_inputs
        Used to find the blocks (unless ``blocks`` is given) and for the forward check.
    blocks : sequence of Block, optional
        The result of :func:`find_blocks`, to skip a second trace.

    Returns
    -------
    DepthPlan

    Raises
    ------
    ValueError
        Unknown or duplicate names, or a request that would empty a container; the model
        is untouched.
    RuntimeError
        The forward check failed; the model was restored exactly and the message names
        the removed blocks and the error.
    """
    names = list(names)
    known = {b.name: b for b in (find_blocks(model, example_inputs) if blocks is None else blocks)}
    _validate_names(model, names, known)
    with inference_mode_of(model):
        before = _shapes(call_model(model, example_inputs))
    return _remove_checked(model, [known[n] for n in names], example_inputs, before)


def _validate_names(model: nn.Module, names: list[str], known: dict[str, Block]) -> None:
    if len(set(names)) != len(names):
        raise ValueError(f"names: duplicates in {names}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"names: {unknown} are not removable blocks; removable: {sorted(known) or 'none'}"
        )
    per_container: dict[str, int] = {}
    for n in names:
        per_container[known[n].container] = per_container.get(known[n].container, 0) + 1
    for cname, k in per_container.items():
        total = len(model.get_submodule(cname)._modules)
        if k >= total:
            raise ValueError(
                f"names: asked to remove {k} blocks from {cname!r}, which holds {total}; "
                "at least one must stay"
            )


def _remove_checked(
    model: nn.Module, chosen: list[Block], example_inputs: Any, before: list[tuple]
) -> DepthPlan:
    try:
        with transaction(model):
            snapshots = _delete(model, chosen)
            removals = [Removal(c, len(s), tuple(_kept_positions(s, chosen, c)))
                        for c, s in snapshots.items()]
            notes = apply_fixers(model, removals)
            with inference_mode_of(model):
                after = _shapes(call_model(model, example_inputs))
            if after != before:
                raise RuntimeError(f"output shapes changed from {before} to {after}")
    except Exception as err:
        raise RuntimeError(
            f"removing blocks {[b.name for b in chosen]} failed ({type(err).__name__}: {err}); "
            "the model was restored"
        ) from err
    containers = {r.container: {"old_len": r.old_len, "kept": list(r.kept),
                                "keys": list(snapshots[r.container])} for r in removals}
    return DepthPlan(sorted((b.name for b in chosen), key=_natural), containers, notes)


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in name.split(".")]


def _delete(model: nn.Module, chosen: list[Block]) -> dict[str, dict[str, nn.Module]]:
    """Remove the blocks from their containers; return each container's old ``_modules``."""
    snapshots: dict[str, dict[str, nn.Module]] = {}
    for b in chosen:
        snapshots.setdefault(b.container, dict(model.get_submodule(b.container)._modules))
    for cname, old in snapshots.items():
        drop = {b.key for b in chosen if b.container == cname}
        kept = [(k, m) for k, m in old.items() if k not in drop]
        renumber = all(k.isdigit() for k in old)
        container = model.get_submodule(cname)
        container._modules.clear()
        for i, (k, m) in enumerate(kept):
            container._modules[str(i) if renumber else k] = m
    return snapshots


def _kept_positions(old: dict[str, nn.Module], chosen: list[Block], cname: str) -> list[int]:
    drop = {b.key for b in chosen if b.container == cname}
    return [i for i, k in enumerate(old) if k not in drop]


def _shapes(output: Any) -> list[tuple]:
    """Shapes of the output's tensors (the forward check compares them)."""
    if isinstance(output, torch.Tensor):
        return [tuple(output.shape)]
    if hasattr(output, "to_tuple"):
        output = output.to_tuple()
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, tuple | list):
        return [s for o in output if _has_tensor(o) for s in _shapes(o)]
    return []


def _has_tensor(o: Any) -> bool:
    return first_tensor(o) is not None


def apply_depth_plan(model: nn.Module, plan: DepthPlan | dict,
                     example_inputs: Any = None) -> DepthPlan:
    """Replay a plan on a freshly built model of the original architecture (to reload a
    pruned model): removes the same blocks by their original positions.

    With ``example_inputs`` the blocks are re-traced and the model forward-checked (all
    or nothing); without, the containers are cut by the recorded positions and the
    dependents fixed, with no forward pass (what a loader without inputs can do).
    """
    if isinstance(plan, dict):
        plan = DepthPlan.from_dict(plan)
    _check_containers(model, plan)
    if example_inputs is not None:
        return remove_blocks(model, plan.removed, example_inputs)
    chosen = [Block(f"{c}.{k}" if c else k, c, k, i, (), 0)
              for c, info in plan.containers.items()
              for i, k in enumerate(model.get_submodule(c)._modules) if i not in info["kept"]]
    with transaction(model):
        snapshots = _delete(model, chosen)
        apply_fixers(model, [Removal(c, len(s), tuple(_kept_positions(s, chosen, c)))
                             for c, s in snapshots.items()])
    return plan


def _check_containers(model: nn.Module, plan: DepthPlan) -> None:
    """Each container exists, is a ModuleList / Sequential and holds the recorded blocks."""
    mods = dict(model.named_modules())
    for cname, info in plan.containers.items():
        field = key("containers", cname)
        container = mods.get(cname)
        if not isinstance(container, nn.ModuleList | nn.Sequential):
            raise PlanError(f"the model has no nn.ModuleList / nn.Sequential named {cname!r}",
                            field=field)
        keys = list(container._modules)
        if len(keys) != info["old_len"]:
            raise PlanError(f"container {cname!r} holds {len(keys)} blocks, plan expects "
                            f"{info['old_len']}", field=f"{field}.old_len")
        if keys != info["keys"]:
            raise PlanError(f"container {cname!r} has keys {keys[:8]}, plan expects "
                            f"{info['keys'][:8]}", field=f"{field}.keys")


def merge_plans(plans: Sequence[DepthPlan]) -> DepthPlan:
    """One plan equivalent to applying ``plans`` in order, in the original numbering."""
    merged: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for plan in plans:
        notes += plan.notes
        for cname, info in plan.containers.items():
            prev = merged.get(cname)
            if prev is None:
                merged[cname] = {k: list(v) if isinstance(v, list) else v for k, v in info.items()}
            else:
                prev["kept"] = [prev["kept"][i] for i in info["kept"]]
    removed = [f"{c}.{info['keys'][i]}" if c else info["keys"][i]
               for c, info in merged.items()
               for i in range(info["old_len"]) if i not in set(info["kept"])]
    return DepthPlan(sorted(removed, key=_natural), merged, notes)
